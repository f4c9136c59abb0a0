"""``POST /webhook`` and ``POST /webhook/{channel}``: one signed customer message."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ai_customer_service.context import AppContext
from ai_customer_service.errors import BadRequest
from ai_customer_service.http.deps import context_of, request_id_of
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


def respond(result: IngestResult) -> Response:
    """The response of an ingested message, validated against :class:`WebhookResponse` and
    serialised here (the routes return a ``Response``, so FastAPI does not validate it again)."""
    body = WebhookResponse.model_validate(result.response).model_dump_json(by_alias=True)
    return Response(body, media_type="application/json")


# The message path's routes take the request alone (no dependencies to solve per message) and answer
# with a serialised body; ``response_model`` documents it.
@router.post("/webhook", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook(request: Request) -> Response:
    """Receive one signed customer message from a channel gateway and answer it."""
    ctx = context_of(request)
    result = await receive(request, ctx, request_id_of(request), channel=None, secrets=_secrets(ctx))
    return respond(result)


@router.post("/webhook/{channel}", response_model=WebhookResponse, openapi_extra=BODY_DOC)
async def webhook_for_channel(channel: str, request: Request) -> Response:
    """The same, with the channel in the path (the path wins over the body)."""
    ctx = context_of(request)
    result = await receive(request, ctx, request_id_of(request), channel=channel, secrets=_secrets(ctx))
    return respond(result)
