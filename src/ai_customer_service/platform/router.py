"""``POST /platforms/{platform}/webhook[/{channel}]``: a platform's customer message.

The same body, validation, deduplication and single transaction as the generic webhook, signed with
the platform's own ingress secret; the platform receives the conversation's events by callback
(the outbox), so the answer here is only the acknowledgement.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from ai_customer_service.config import PlatformSettings
from ai_customer_service.context import AppContext
from ai_customer_service.errors import PLATFORM_NOT_FOUND, NotFound
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.webhook.router import BODY_DOC, receive

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
    raise NotFound(f"platform adapter {name!r} not found or not enabled", PLATFORM_NOT_FOUND)


async def _receive(
    request: Request, ctx: AppContext, platform: str, channel: str | None, rid: str
) -> PlatformAck:
    profile = _profile(ctx, platform)
    secrets = (profile.ingress_secret, profile.ingress_secret_previous)
    result = await receive(request, ctx, rid, channel=channel, secrets=secrets, platform=profile.name)
    return PlatformAck(
        accepted=True,
        platform=profile.name,
        event_id=result.event_id or "",
        session_id=result.response["session_id"],
        ticket_id=result.response["ticket_id"],
        duplicate=result.duplicate,
    )


@router.post("/{platform}/webhook", response_model=PlatformAck, openapi_extra=BODY_DOC)
async def platform_webhook(
    platform: str, request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> PlatformAck:
    """A platform's signed customer message; the channel defaults to the platform's name."""
    return await _receive(request, ctx, platform, None, rid)


@router.post("/{platform}/webhook/{channel}", response_model=PlatformAck, openapi_extra=BODY_DOC)
async def platform_webhook_for_channel(
    platform: str,
    channel: str,
    request: Request,
    ctx: AppContext = Depends(app_context),
    rid: str = Depends(request_id),
) -> PlatformAck:
    """The same, with the channel in the path."""
    return await _receive(request, ctx, platform, channel, rid)
