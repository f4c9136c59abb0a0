"""``/tickets``: list, detail, stats, the workflow actions, replies and private notes.

Action parameters come as a JSON body or, for compatibility with the original, as query parameters
(``?agent_id=``, ``?resolution=``); the body wins when both are given.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.conversation.schemas import SessionOut
from ai_customer_service.conversation.service import parse_session_id
from ai_customer_service.errors import REQ_INVALID, BadRequest
from ai_customer_service.http.deps import app_context, request_id, request_id_of
from ai_customer_service.pagination import PageNumber
from ai_customer_service.ticket import queries, service
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.schemas import (
    AssignBody,
    HandoffOut,
    HandoffRequest,
    MessageOut,
    NoteBody,
    NoteOut,
    ReplyBody,
    ReplyOut,
    ResolveBody,
    TicketDetailOut,
    TicketList,
    TicketOut,
    TicketStats,
)
from ai_customer_service.ticket.states import Action, Priority, TicketStatus
from ai_customer_service.wire import Storable, UtcDateTime

router = APIRouter(prefix="/tickets", tags=["tickets"])
anyone = require_roles()
staff = require_roles(Role.SUPERVISOR, Role.ADMIN)


def _enum_list(raw: str | None, enum: type[TicketStatus] | type[Priority], name: str) -> list[Any]:
    if not raw:
        return []
    try:
        return [enum(part.strip()) for part in raw.split(",") if part.strip()]
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise BadRequest(f"{name} must be one or more of: {allowed}", REQ_INVALID) from None


@router.get("", response_model=TicketList)
async def list_tickets(
    actor: Actor = Depends(anyone),
    ctx: AppContext = Depends(app_context),
    status: Annotated[str | None, Query(description="comma-separated states")] = None,
    priority: Annotated[str | None, Query(description="comma-separated, e.g. P1,P2")] = None,
    assignee: Annotated[
        str | None, Query(max_length=64, description="a principal's id or name, 'me' or 'none'"), Storable
    ] = None,
    channel: Annotated[str | None, Query(max_length=32), Storable] = None,
    created_from: UtcDateTime | None = None,
    created_to: UtcDateTime | None = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> TicketList:
    assignee_id: uuid.UUID | None = None
    assignee_name: str | None = None
    if assignee == "me":
        assignee_id = actor.id
    elif assignee not in (None, "", "none"):
        ref = _principal_ref(assignee)
        assignee_id, assignee_name = (ref, None) if isinstance(ref, uuid.UUID) else (None, ref)
    filters = queries.TicketFilter(
        statuses=_enum_list(status, TicketStatus, "status"),
        priorities=_enum_list(priority, Priority, "priority"),
        assignee=assignee_id,
        assignee_name=assignee_name,
        unassigned=assignee == "none",
        channel=channel,
        created_from=created_from,
        created_to=created_to,
    )
    result = await queries.list_tickets(ctx.db, actor=actor, filters=filters, page=page, page_size=page_size)
    return TicketList(
        items=result.map(TicketOut.of), total=result.total, page=result.page, page_size=result.page_size
    )


@router.get("/stats", response_model=TicketStats)
async def ticket_stats(
    _: Actor = Depends(staff),
    ctx: AppContext = Depends(app_context),
    created_from: UtcDateTime | None = None,
    created_to: UtcDateTime | None = None,
) -> TicketStats:
    stats = await queries.ticket_stats(ctx.db, created_from=created_from, created_to=created_to)
    return TicketStats.model_validate(stats)


@router.get("/{ticket_id}", response_model=TicketDetailOut)
async def get_ticket(
    ticket_id: str, actor: Actor = Depends(anyone), ctx: AppContext = Depends(app_context)
) -> TicketDetailOut:
    detail = await queries.get_ticket(ctx.db, service.parse_ticket_id(ticket_id), actor=actor)
    return TicketDetailOut(
        **TicketOut.of(detail.ticket).model_dump(),
        messages=[MessageOut.of(m) for m in detail.messages],
        notes=[NoteOut.of(n) for n in detail.notes],
    )


# one helper for the four workflow actions: the change (one service call), its metric, the ticket
_CHANGES: dict[Action, Callable[..., Awaitable[Ticket]]] = {
    Action.ASSIGN: service.assign,
    Action.RESOLVE: service.resolve,
    Action.CLOSE: service.close,
    Action.REOPEN: service.reopen,
}


async def _transition(
    action: Action, ticket_id: str, request: Request, actor: Actor, ctx: AppContext, **params: Any
) -> TicketOut:
    ticket = await _CHANGES[action](
        ctx.store,
        service.parse_ticket_id(ticket_id),
        actor=actor,
        request_id=request_id_of(request),
        **params,
    )
    ctx.metrics.ticket_transitions.labels(action.value).inc()
    return TicketOut.of(ticket)


def _principal_ref(raw: str) -> uuid.UUID | str:
    """A principal named by its id (a UUID) or by its name / the gateway's actor id."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return raw.strip()


async def _resolution(
    body: Annotated[ResolveBody | None, Body()] = None,
    resolution: Annotated[str | None, Query(max_length=4000), Storable] = None,
) -> str | None:
    """The resolution text from the JSON body, else from ``?resolution=`` (the original's form)."""
    if body is not None and body.resolution is not None:
        return body.resolution
    return resolution


@router.post("/{ticket_id}/assign", response_model=TicketOut)
async def assign(
    ticket_id: str,
    request: Request,
    body: Annotated[AssignBody | None, Body()] = None,
    agent_id: Annotated[
        str | None,
        Query(max_length=64, description="a principal's id or name (trusted-header mode: the gateway's id)"),
        Storable,
    ] = None,
    actor: Actor = Depends(anyone),
    ctx: AppContext = Depends(app_context),
) -> TicketOut:
    target = body.agent_id if body is not None and body.agent_id is not None else None
    if target is None and agent_id:
        target = _principal_ref(agent_id)
    return await _transition(Action.ASSIGN, ticket_id, request, actor, ctx, agent_id=target)


@router.post("/{ticket_id}/resolve", response_model=TicketOut)
async def resolve(
    ticket_id: str,
    request: Request,
    text: str | None = Depends(_resolution),
    actor: Actor = Depends(anyone),
    ctx: AppContext = Depends(app_context),
) -> TicketOut:
    handback = ctx.settings.ticket_handback_on
    return await _transition(
        Action.RESOLVE, ticket_id, request, actor, ctx, resolution=text, handback_on=handback
    )


@router.post("/{ticket_id}/close", response_model=TicketOut)
async def close(
    ticket_id: str,
    request: Request,
    text: str | None = Depends(_resolution),
    actor: Actor = Depends(staff),
    ctx: AppContext = Depends(app_context),
) -> TicketOut:
    return await _transition(Action.CLOSE, ticket_id, request, actor, ctx, resolution=text)


@router.post("/{ticket_id}/reopen", response_model=TicketOut)
async def reopen(
    ticket_id: str, request: Request, actor: Actor = Depends(staff), ctx: AppContext = Depends(app_context)
) -> TicketOut:
    return await _transition(Action.REOPEN, ticket_id, request, actor, ctx)


@router.post("/{ticket_id}/reply", response_model=ReplyOut)
async def reply(
    ticket_id: str,
    body: ReplyBody,
    request: Request,
    actor: Actor = Depends(anyone),
    ctx: AppContext = Depends(app_context),
) -> ReplyOut:
    ticket, message = await service.reply(
        ctx.store,
        service.parse_ticket_id(ticket_id),
        actor=actor,
        content=body.content,
        request_id=request_id_of(request),
    )
    return ReplyOut(ticket=TicketOut.of(ticket), message=MessageOut.of(message))


@router.post("/{ticket_id}/notes", status_code=201, response_model=NoteOut)
async def add_note(
    ticket_id: str, body: NoteBody, actor: Actor = Depends(anyone), ctx: AppContext = Depends(app_context)
) -> NoteOut:
    note = await service.add_note(ctx.store, service.parse_ticket_id(ticket_id), actor=actor, body=body.body)
    return NoteOut.of(note)


# --- /sessions/{id}/close and /sessions/{id}/handoff ------------------------------------------------
# the conversation changes that depend on its tickets (a session with a ticket that needs a human is
# not closed; a handoff opens a ticket): ticket use cases, on the ``/sessions`` path; the rest of
# ``/sessions`` is in conversation/router.py

sessions = APIRouter(prefix="/sessions", tags=["sessions"])
session_staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


@sessions.post("/{session_id}/close", response_model=SessionOut)
async def close_session(
    session_id: str,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(session_staff),
    rid: str = Depends(request_id),
) -> SessionOut:
    closed = await service.close_session(
        ctx.store, parse_session_id(session_id), actor_id=str(actor.id), request_id=rid
    )
    return SessionOut.model_validate(closed)


@sessions.post("/{session_id}/handoff", response_model=HandoffOut)
async def handoff_session(
    session_id: str,
    body: HandoffRequest | None = None,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(session_staff),
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
