"""``/sessions/{id}``: read a conversation and take CSAT feedback (closing it and handing it to a
human depend on its tickets: the ``sessions`` router in ``ticket/router.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request

from ai_customer_service import safejson
from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.conversation import queries, service
from ai_customer_service.conversation.schemas import FeedbackOut, MessagePage, SessionOut
from ai_customer_service.errors import BadRequest
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.http.openapi import raw_json_body
from ai_customer_service.pagination import PageNumber
from ai_customer_service.values import unstorable_reason
from ai_customer_service.webhook.signature import verify_request

router = APIRouter(prefix="/sessions", tags=["sessions"])
staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: str, ctx: AppContext = Depends(app_context), actor: Actor = Depends(staff)
) -> SessionOut:
    return SessionOut.model_validate(await queries.read_session(ctx.db, service.parse_session_id(session_id)))


@router.get("/{session_id}/messages", response_model=MessagePage)
async def get_messages(
    session_id: str,
    page: PageNumber = 1,
    page_size: int = Query(50, ge=1, le=200),
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
) -> MessagePage:
    result = await queries.read_messages(
        ctx.db, service.parse_session_id(session_id), page=page, page_size=page_size
    )
    return MessagePage.model_validate(result)


_FEEDBACK_BODY = raw_json_body(
    {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "comment": {"type": "string", "maxLength": 2000},
    },
    required=["score"],
)


@router.post("/{session_id}/feedback", response_model=FeedbackOut, openapi_extra=_FEEDBACK_BODY)
async def session_feedback(
    session_id: str,
    request: Request,
    ctx: AppContext = Depends(app_context),
    rid: str = Depends(request_id),
) -> FeedbackOut:
    """CSAT from the channel gateway: signed like the webhook. A v1-signed rating is bound to the
    session it was first sent for: the same signed bytes for another session are 403
    ``CS_AUTH_4035``."""
    raw = await request.body()
    rated_at = None
    binding = None
    if ctx.settings.webhook_secret:
        binding = verify_request(
            request,
            raw,
            secret=(ctx.settings.webhook_secret, ctx.settings.webhook_secret_previous),
            settings=ctx.settings,
            rejections=ctx.rejections,
        ).binding
        # verified: an integer within the skew window; orders ratings, so a replayed older one loses
        rated_at = datetime.fromtimestamp(int(request.headers[ctx.settings.webhook_timestamp_header]), UTC)
    target = service.parse_session_id(session_id)
    score, comment = _parse_feedback(raw)
    stored = await service.feedback(
        ctx.store, target, score=score, comment=comment, request_id=rid, rated_at=rated_at, signature=binding
    )
    return FeedbackOut.model_validate(stored)


def _parse_feedback(raw: bytes) -> tuple[int, str | None]:
    try:
        data = safejson.loads(raw)
    except safejson.JsonInputError as exc:
        raise BadRequest(f"request body {exc}", "CS_REQ_4001") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", "CS_REQ_4001")
    unknown = sorted(set(data) - {"score", "comment"})
    if unknown:
        raise BadRequest(f"unknown field: {', '.join(unknown)}", "CS_REQ_4001")
    score = data.get("score")
    if type(score) is not int or not 1 <= score <= 5:
        raise BadRequest("feedback score must be between 1 and 5", "CS_REQ_4009")
    comment = data.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise BadRequest("comment must be a string of at most 2000 characters", "CS_REQ_4001")
    reason = None if comment is None else unstorable_reason(comment)
    if reason is not None:
        raise BadRequest(
            f"comment {reason}", "CS_REQ_4001", details=[{"field": "comment", "message": reason}]
        )
    return score, comment
