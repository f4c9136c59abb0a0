"""``POST /webhook`` and ``POST /webhook/{channel}``: one signed customer message."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ai_customer_service.context import AppContext
from ai_customer_service.errors import BadRequest
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.webhook.schemas import WebhookResponse, parse_inbound
from ai_customer_service.webhook.signature import verify_request

router = APIRouter(tags=["webhook"])

BODY_DOC: dict[str, Any] = {
    # the message body, declared here because the route reads the raw bytes (the signature covers them)
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["open_id", "content"],
                    "properties": {
                        "message_id": {"type": "string", "maxLength": 128},
                        "channel": {"type": "string", "maxLength": 32},
                        "open_id": {"type": "string", "maxLength": 128},
                        "user_id": {"type": "string", "maxLength": 64},
                        "content": {"type": "string"},
                        "content_type": {"type": "string", "default": "text"},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "reply_to": {"type": "string", "maxLength": 128},
                    },
                }
            }
        },
    }
}


async def _handle(request: Request, ctx: AppContext, channel: str | None, rid: str) -> dict[str, Any]:
    body = await request.body()
    verified = None
    if ctx.settings.webhook_secret:
        verified = verify_request(
            request,
            body,
            secret=(ctx.settings.webhook_secret, ctx.settings.webhook_secret_previous),
            settings=ctx.settings,
            rejections=ctx.rejections,
        )
    try:
        message = parse_inbound(
            body,
            path_channel=channel,
            channels=ctx.settings.channel_names,
            max_content_chars=ctx.settings.max_content_chars,
            replay_key=verified.replay_key if verified else None,
        )
    except BadRequest as exc:
        ctx.rejections.record(exc.code, request_id=rid, path=request.url.path, reason=exc.message)
        raise
    result = await ctx.ingest.ingest(
        message, request_id=rid, signature=verified.binding if verified else None
    )
    return result.response


@router.post("/webhook", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook(
    request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> dict[str, Any]:
    """Receive one signed customer message from a channel gateway and answer it."""
    return await _handle(request, ctx, None, rid)


@router.post("/webhook/{channel}", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook_for_channel(
    channel: str, request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> dict[str, Any]:
    """The same, with the channel in the path (the path wins over the body)."""
    return await _handle(request, ctx, channel, rid)
