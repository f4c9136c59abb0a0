"""``POST /webhook`` and ``POST /webhook/{channel}``: one signed customer message."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ai_customer_service.context import AppContext
from ai_customer_service.errors import BadRequest
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.http.openapi import raw_json_body
from ai_customer_service.webhook.schemas import WebhookResponse, parse_inbound
from ai_customer_service.webhook.service import IngestResult
from ai_customer_service.webhook.signature import verify_request

router = APIRouter(tags=["webhook"])

# the message body, declared here because the route reads the raw bytes (the signature covers them)
BODY_DOC = raw_json_body(
    {
        "message_id": {"type": "string", "maxLength": 128},
        "channel": {"type": "string", "maxLength": 32},
        "open_id": {"type": "string", "maxLength": 128},
        "user_id": {"type": "string", "maxLength": 64},
        "content": {"type": "string"},
        "content_type": {"type": "string", "default": "text"},
        "timestamp": {"type": "string", "format": "date-time"},
        "reply_to": {"type": "string", "maxLength": 128},
    },
    required=["open_id", "content"],
)


async def receive(
    request: Request,
    ctx: AppContext,
    rid: str,
    *,
    channel: str | None,
    secrets: tuple[str, str] | None,
    platform: str = "",
) -> IngestResult:
    """One inbound message, for the generic webhook and for a platform's: verify the signature (when
    ``secrets`` are given), parse the body (a 400 is recorded as a rejection), ingest it once.
    ``platform`` is the platform's name (its default channel and the conversation's source)."""
    body = await request.body()
    verified = None
    if secrets is not None:
        verified = verify_request(
            request, body, secret=secrets, settings=ctx.settings, rejections=ctx.rejections
        )
    try:
        message = parse_inbound(
            body,
            path_channel=channel,
            channels=ctx.settings.channel_names,
            max_content_chars=ctx.settings.max_content_chars,
            default_channel=platform or None,
            replay_key=verified.replay_key if verified else None,
        )
    except BadRequest as exc:
        ctx.rejections.record(exc.code, request_id=rid, path=request.url.path, reason=exc.message)
        raise
    return await ctx.ingest.ingest(
        message, source=platform, request_id=rid, signature=verified.binding if verified else None
    )


def _secrets(ctx: AppContext) -> tuple[str, str] | None:
    settings = ctx.settings
    return (settings.webhook_secret, settings.webhook_secret_previous) if settings.webhook_secret else None


@router.post("/webhook", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook(
    request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> WebhookResponse:
    """Receive one signed customer message from a channel gateway and answer it."""
    result = await receive(request, ctx, rid, channel=None, secrets=_secrets(ctx))
    return WebhookResponse.model_validate(result.response)


@router.post("/webhook/{channel}", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook_for_channel(
    channel: str, request: Request, ctx: AppContext = Depends(app_context), rid: str = Depends(request_id)
) -> WebhookResponse:
    """The same, with the channel in the path (the path wins over the body)."""
    result = await receive(request, ctx, rid, channel=channel, secrets=_secrets(ctx))
    return WebhookResponse.model_validate(result.response)
