"""``POST /platforms/{platform}/webhook[/{channel}]``: a platform's customer message.

The same body, validation, deduplication and single transaction as the generic webhook, signed with
the platform's own ingress secret; the platform receives the conversation's events by callback
(the outbox), so the answer here is only the acknowledgement.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from ai_customer_service.config import PlatformSettings
from ai_customer_service.context import AppContext
from ai_customer_service.errors import BadRequest, NotFound
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.webhook.router import BODY_DOC
from ai_customer_service.webhook.schemas import parse_inbound
from ai_customer_service.webhook.signature import verify_request

router = APIRouter(prefix="/platforms", tags=["platforms"])


class PlatformAck(BaseModel):
    accepted: bool
    platform: str
    event_id: str
    session_id: str
    ticket_id: str
    duplicate: bool


def _profile(ctx: AppContext, name: str) -> PlatformSettings:
    for profile in ctx.settings.enabled_platforms:
        if profile.name == name.lower():
            return profile
    raise NotFound(f"platform adapter {name!r} not found or not enabled", "CS_PLATFORM_4041")


async def _handle(
    request: Request, ctx: AppContext, platform: str, channel: str | None, rid: str
) -> dict[str, Any]:
    profile = _profile(ctx, platform)
    body = await request.body()
    verified = verify_request(
        request,
        body,
        secret=(profile.ingress_secret, profile.ingress_secret_previous),
        settings=ctx.settings,
        rejections=ctx.rejections,
    )
    try:
        message = parse_inbound(
            body,
            path_channel=channel,
            channels=ctx.settings.channel_names,
            max_content_chars=ctx.settings.max_content_chars,
            default_channel=profile.name,
            replay_key=verified.replay_key,
        )
    except BadRequest as exc:
        ctx.rejections.record(exc.code, request_id=rid, path=request.url.path, reason=exc.message)
        raise
    result = await ctx.ingest.ingest(message, source=profile.name, request_id=rid, signature=verified.binding)
    return {
        "accepted": True,
        "platform": profile.name,
        "event_id": result.event_id or "",
        "session_id": result.response["session_id"],
        "ticket_id": result.response["ticket_id"],
        "duplicate": result.duplicate,
    }


@router.post("/{platform}/webhook", response_model=PlatformAck, openapi_extra=BODY_DOC)
async def platform_webhook(
    platform: str, request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> dict[str, Any]:
    """A platform's signed customer message; the channel defaults to the platform's name."""
    return await _handle(request, ctx, platform, None, rid)


@router.post("/{platform}/webhook/{channel}", response_model=PlatformAck, openapi_extra=BODY_DOC)
async def platform_webhook_for_channel(
    platform: str,
    channel: str,
    request: Request,
    ctx: AppContext = Depends(app_context),
    rid: str = Depends(request_id),
) -> dict[str, Any]:
    """The same, with the channel in the path."""
    return await _handle(request, ctx, platform, channel, rid)
