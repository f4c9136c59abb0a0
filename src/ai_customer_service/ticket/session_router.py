"""``/sessions/{id}/close`` and ``/sessions/{id}/handoff``: the conversation changes that depend on
its tickets (a session with a ticket that needs a human is not closed; a handoff opens a ticket).
They live on the ticket side, which builds on ``conversation``; the rest of ``/sessions`` is in
``conversation/router.py``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.conversation.schemas import SessionOut
from ai_customer_service.conversation.service import parse_session_id
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.ticket import service
from ai_customer_service.ticket.schemas import HandoffOut, HandoffRequest
from ai_customer_service.ticket.states import Priority

router = APIRouter(prefix="/sessions", tags=["sessions"])
staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


@router.post("/{session_id}/close", response_model=SessionOut)
async def close_session(
    session_id: str,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
    rid: str = Depends(request_id),
) -> SessionOut:
    closed = await service.close_session(
        ctx.store, parse_session_id(session_id), actor_id=str(actor.id), request_id=rid
    )
    return SessionOut.model_validate(closed)


@router.post("/{session_id}/handoff", response_model=HandoffOut)
async def handoff_session(
    session_id: str,
    body: HandoffRequest | None = None,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
    rid: str = Depends(request_id),
) -> HandoffOut:
    result = await service.hand_off_session(
        ctx.store,
        parse_session_id(session_id),
        reason=body.reason if body else "",  # no body: the reason is missing (CS_REQ_4010)
        priority=body.priority if body else Priority.P2,
        actor_id=str(actor.id),
        request_id=rid,
    )
    ctx.metrics.handoffs.labels("manual").inc()
    return HandoffOut.model_validate(result)
