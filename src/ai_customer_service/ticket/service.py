"""Ticket use cases. Each public function is one unit of work: load, check the role and the state
machine (:mod:`ticket.states`), change the ticket with a conditional UPDATE (``WHERE id AND status AND
version``: of concurrent changes exactly one wins, the others get 409), and write exactly one audit row
per successful transition in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import Principal, Role
from ai_customer_service.auth.service import resolve_principal
from ai_customer_service.config import HandbackOn
from ai_customer_service.conversation import queries as conversation_queries
from ai_customer_service.conversation import repository as conversations
from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.conversation.states import AuthorType, Direction, SessionAction
from ai_customer_service.conversation.states import next_status as session_next
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.locking import for_update
from ai_customer_service.errors import BadRequest, Conflict, Forbidden, NotFound
from ai_customer_service.outbox.events import EventType
from ai_customer_service.ticket.models import Ticket, TicketNote
from ai_customer_service.ticket.repository import active_for_session, create_for_handoff, handoff_row
from ai_customer_service.ticket.states import (
    ACTIVE_STATUSES,
    REPLY_CONFLICT_CODE,
    REPLYABLE_STATUSES,
    TRANSITIONS,
    Action,
    Priority,
    TicketStatus,
    next_status,
)
from ai_customer_service.uow import Store, UnitOfWork
from ai_customer_service.values import require_uuid

_ACTIVE_VALUES = [s.value for s in ACTIVE_STATUSES]
_WORKING_VALUES = [TicketStatus.ASSIGNED.value, TicketStatus.PROCESSING.value]


_EVENTS: dict[Action, EventType] = {
    Action.ASSIGN: EventType.TICKET_ASSIGNED,
    Action.RESOLVE: EventType.TICKET_RESOLVED,
    Action.CLOSE: EventType.TICKET_CLOSED,
    Action.REOPEN: EventType.TICKET_REOPENED,
}


def parse_ticket_id(raw: str) -> uuid.UUID:
    """A path's ticket id; a malformed one names no ticket (404)."""
    return require_uuid(raw, "ticket", "CS_TICKET_4001")


async def _load(tx: AsyncSession, ticket_id: uuid.UUID) -> Ticket:
    ticket = await tx.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket not found", "CS_TICKET_4001")
    return ticket


async def _load_for_change(tx: AsyncSession, ticket_id: uuid.UUID) -> Ticket:
    """The ticket, read after locking its session's row (``FOR UPDATE`` on PostgreSQL).

    Every writer locks a conversation's session before its tickets: a customer message does (the
    webhook locks the session, then may reopen the resolved ticket), and so does every ticket change
    here. One lock order means a staff action racing a customer message waits for it instead of
    deadlocking; the ticket is read after the wait, so the action sees the message's changes.
    """
    owner = select(Ticket.session_id).where(Ticket.id == ticket_id).scalar_subquery()
    locked = await tx.execute(select(Session.id).where(Session.id == owner).with_for_update())
    if locked.scalar_one_or_none() is None:
        raise NotFound("ticket not found", "CS_TICKET_4001")
    return await _load(tx, ticket_id)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


async def _transition(
    uow: UnitOfWork,
    ticket: Ticket,
    action: Action,
    *,
    actor_type: str,
    actor_id: object | None,
    now: datetime,
    values: Mapping[str, Any],
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
    announce: bool = True,
) -> Ticket:
    """Apply ``action`` if the ticket is still exactly as read; one audit row and its outbound
    event in the same unit of work; 409 otherwise. ``announce=False`` only where the caller
    publishes the transition's event itself, with its other events (a customer's message reopening
    a ticket)."""
    tx = uow.tx
    before = TicketStatus(ticket.status)
    target = next_status(before, action)
    stmt = (
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status == before.value, Ticket.version == ticket.version)
        .values(status=target.value, version=Ticket.version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    code = TRANSITIONS[action].conflict_code
    try:
        # a savepoint: a unique-index violation must not abort the caller's whole transaction
        async with tx.begin_nested():
            changed = _rowcount(await tx.execute(stmt))
    except IntegrityError as exc:  # reopening while the session already has an active ticket
        raise Conflict("the session already has an active ticket", code) from exc
    if changed != 1:
        raise Conflict("the ticket was changed concurrently; reload it and try again", code)
    uow.audit(
        object_type="ticket",
        object_id=ticket.id,
        action=action.value,
        actor_type=actor_type,
        actor_id=actor_id,
        before_state=before.value,
        after_state=target.value,
        request_id=request_id,
        details=details,
    )
    await tx.refresh(ticket)
    event_type = _EVENTS.get(action)
    if announce and event_type is not None:
        session = await tx.get(Session, ticket.session_id)
        if session is not None:
            uow.publish(
                session,
                event_type,
                {
                    "status": target.value,
                    "previous_status": before.value,
                    "assignee_id": ticket.assignee_id,
                    "priority": ticket.priority,
                    "resolution": ticket.resolution,
                    "actor_id": actor_id,
                },
                ticket_id=ticket.id,
            )
    return ticket


async def _hand_back(tx: AsyncSession, session_id: uuid.UUID, now: datetime) -> None:
    """Ask the conversation to go back to the bot, unless another ticket of it still needs a human
    (the session's row is locked: no ticket of it can become active meanwhile)."""
    if await active_for_session(tx, session_id) is None:
        await conversations.hand_back(tx, session_id, now=now)


def _require_staff(actor: Actor, what: str) -> None:
    if not actor.is_staff:
        raise Forbidden(f"only supervisors and admins may {what} tickets", "CS_AUTH_4001")


def require_visible(actor: Actor, ticket: Ticket) -> None:
    """Agents work on the unassigned queue and their own tickets."""
    if actor.is_agent and ticket.assignee_id not in (None, actor.id):
        raise Forbidden("this ticket is assigned to another agent", "CS_AUTH_4001")


def _require_assignee_or_staff(actor: Actor, ticket: Ticket, what: str) -> None:
    if actor.is_agent and ticket.assignee_id != actor.id:
        raise Forbidden(f"only the assigned agent, a supervisor or an admin may {what} this ticket")


# --- transitions ----------------------------------------------------------------------------------


async def assign(
    store: Store,
    ticket_id: uuid.UUID,
    *,
    actor: Actor,
    agent_id: uuid.UUID | str | None,
    request_id: str | None = None,
) -> Ticket:
    """Assign or reassign (supervisor, admin); an agent may claim an *open* ticket for itself.

    ``agent_id`` names the principal by id or by name; in trusted-header mode also by the gateway's
    own actor id (``li.lei``), provisioned as an agent on first sight, as the original accepted."""
    if agent_id is None and not actor.is_agent:
        raise BadRequest("ticket_id and agent_id are required", "CS_REQ_4005")
    async with store.begin() as uow:
        tx = uow.tx
        if agent_id is None:
            target: uuid.UUID | None = actor.id
        elif isinstance(agent_id, uuid.UUID):
            target = agent_id
        else:
            target = await resolve_principal(tx, agent_id, provision=actor.auth == "trusted_headers")
            if target is None:
                raise BadRequest("agent_id is not an active principal", "CS_TICKET_4003")
        if actor.is_agent and target != actor.id:
            raise Forbidden("agents may only assign tickets to themselves", "CS_AUTH_4001")
        ticket = await _load_for_change(tx, ticket_id)
        status = TicketStatus(ticket.status)
        next_status(status, Action.ASSIGN)
        if actor.is_agent and status is not TicketStatus.OPEN:
            raise Conflict("ticket is already assigned", "CS_TKT_4002")
        if ticket.assignee_id == target:
            raise Conflict("ticket is already assigned to that agent", "CS_TKT_4002")
        agent = await tx.get(Principal, target)
        if agent is None or not agent.active:
            raise BadRequest("agent_id is not an active principal", "CS_TICKET_4003")
        now = utcnow()
        return await _transition(
            uow,
            ticket,
            Action.ASSIGN,
            actor_type=actor.role.value,
            actor_id=actor.id,
            now=now,
            values={"assignee_id": target, "first_assigned_at": ticket.first_assigned_at or now},
            request_id=request_id,
            details={"assignee_id": str(target), "previous_assignee_id": _str(ticket.assignee_id)},
        )


async def resolve(
    store: Store,
    ticket_id: uuid.UUID,
    *,
    actor: Actor,
    resolution: str | None,
    request_id: str | None = None,
    handback_on: HandbackOn = HandbackOn.CLOSE,
) -> Ticket:
    text = (resolution or "").strip()
    if not text:
        raise BadRequest("resolution is required", "CS_REQ_4006")
    async with store.begin() as uow:
        tx = uow.tx
        ticket = await _load_for_change(tx, ticket_id)
        _require_assignee_or_staff(actor, ticket, "resolve")
        now = utcnow()
        await _transition(
            uow,
            ticket,
            Action.RESOLVE,
            actor_type=actor.role.value,
            actor_id=actor.id,
            now=now,
            values={"resolution": text, "resolved_at": now},
            request_id=request_id,
        )
        if handback_on == HandbackOn.RESOLVE:
            await _hand_back(tx, ticket.session_id, now)
        return ticket


async def close(
    store: Store,
    ticket_id: uuid.UUID,
    *,
    actor: Actor,
    resolution: str | None = None,
    request_id: str | None = None,
) -> Ticket:
    """Close a resolved ticket (supervisor, admin); the session goes back to the bot."""
    _require_staff(actor, "close")
    if resolution is not None and not resolution.strip():
        raise BadRequest("resolution must not be empty", "CS_REQ_4007")
    async with store.begin() as uow:
        tx = uow.tx
        ticket = await _load_for_change(tx, ticket_id)
        next_status(TicketStatus(ticket.status), Action.CLOSE)
        final = resolution.strip() if resolution else ticket.resolution
        if not final:
            raise BadRequest("resolution is required to close this ticket", "CS_REQ_4007")
        now = utcnow()
        await _transition(
            uow,
            ticket,
            Action.CLOSE,
            actor_type=actor.role.value,
            actor_id=actor.id,
            now=now,
            values={"resolution": final, "closed_at": now},
            request_id=request_id,
        )
        await _hand_back(tx, ticket.session_id, now)
        return ticket


def _reopen_values() -> dict[str, Any]:
    # back to the queue: a reopened ticket is unassigned (the previous assignee is in the audit row)
    return {"assignee_id": None, "resolution": None, "resolved_at": None, "closed_at": None}


async def reopen(
    store: Store,
    ticket_id: uuid.UUID,
    *,
    actor: Actor,
    request_id: str | None = None,
) -> Ticket:
    _require_staff(actor, "reopen")
    async with store.begin() as uow:
        tx = uow.tx
        ticket = await _load_for_change(tx, ticket_id)
        next_status(TicketStatus(ticket.status), Action.REOPEN)
        if await active_for_session(tx, ticket.session_id) is not None:
            raise Conflict("the session already has an active ticket", "CS_TICKET_4094")
        now = utcnow()
        await _transition(
            uow,
            ticket,
            Action.REOPEN,
            actor_type=actor.role.value,
            actor_id=actor.id,
            now=now,
            values=_reopen_values(),
            request_id=request_id,
            details={"previous_assignee_id": _str(ticket.assignee_id)},
        )
        await conversations.return_to_handoff(tx, ticket.session_id, now=now)
        return ticket


async def reopen_for_customer(
    uow: UnitOfWork, ticket_id: uuid.UUID, *, open_id: str, now: datetime
) -> Ticket | None:
    """Inside the caller's transaction, which holds the session's lock: reopen the ticket a customer's
    message reopens (resolved within ``AI_CS_TICKET_REOPEN_WINDOW_SECONDS``; the caller found it).

    Returns the reopened ticket (now ``open``, unassigned, one audit row with actor_type
    ``customer``), or ``None`` when a concurrent change won the race. The caller moves the session
    back to ``handoff`` and publishes ``ticket.reopened`` with the message's other events.
    """
    ticket = await uow.tx.get(Ticket, ticket_id)
    if ticket is None:
        return None
    try:
        await _transition(
            uow,
            ticket,
            Action.REOPEN,
            actor_type="customer",
            actor_id=open_id[:64],
            now=now,
            values=_reopen_values(),
            details={"reason": "customer_message", "previous_assignee_id": _str(ticket.assignee_id)},
            announce=False,
        )
    except Conflict:
        return None
    return ticket


# --- the conversation's side of a ticket ------------------------------------------------------------


async def hand_off_session(
    store: Store,
    session_id: uuid.UUID,
    *,
    reason: str,
    priority: Priority,
    actor_id: str,
    request_id: str | None,
) -> dict[str, Any]:
    """Staff hand a conversation to a human: open a ticket for it, the session goes to ``handoff``."""
    reason = reason.strip()
    if not reason:
        raise BadRequest("handoff reason is required", "CS_REQ_4010")
    async with store.begin() as uow:
        tx = uow.tx
        session = await conversations.lock_session(tx, session_id)
        session_next(session.status, SessionAction.HAND_OFF)  # 409 when closed, before anything else
        if await active_for_session(tx, session.id) is not None:
            raise Conflict("session already has an open ticket", "CS_SES_4093")
        ticket = await create_for_handoff(
            tx,
            handoff_row(
                session_id=session.id,
                channel=session.channel,
                open_id=session.open_id,
                reason=reason[:64],
                priority=priority,
                subject=reason[:200],
                context={"manual": True, "requested_by": actor_id},
            ),
        )
        before = conversations.hand_off(session, now=utcnow())
        details = {"ticket_id": str(ticket.id), "reason": reason, "priority": priority.value}
        _audit_staff_change(uow, session, "handoff", before, actor_id, request_id, details)
        uow.publish_handoff(session, ticket, manual=True)
        return {"session": conversation_queries.session_view(session, ticket.id), "ticket_id": str(ticket.id)}


def _audit_staff_change(
    uow: UnitOfWork,
    session: Session,
    action: str,
    before: str,
    actor_id: str,
    request_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit row of a session's status changed by staff."""
    uow.audit(
        object_type="session",
        object_id=session.id,
        action=action,
        actor_type="principal",
        actor_id=actor_id,
        before_state=before,
        after_state=session.status,
        request_id=request_id,
        details=details,
    )


async def close_session(
    store: Store, session_id: uuid.UUID, *, actor_id: str, request_id: str | None
) -> dict[str, Any]:
    """Staff close a conversation; not while a ticket of it still needs a human (409 ``CS_SES_4092``)."""
    async with store.begin() as uow:
        tx = uow.tx
        session = await conversations.lock_session(tx, session_id)
        session_next(session.status, SessionAction.CLOSE)  # 409 when closed already
        if await active_for_session(tx, session.id) is not None:
            raise Conflict("session has an open ticket; resolve or close the ticket first", "CS_SES_4092")
        before = conversations.close_session(session, now=utcnow(), reason="closed_by_agent")
        _audit_staff_change(uow, session, "close", before, actor_id, request_id)
        return conversation_queries.session_view(session, None)


# --- conversation with the customer ---------------------------------------------------------------


async def reply(
    store: Store,
    ticket_id: uuid.UUID,
    *,
    actor: Actor,
    content: str,
    request_id: str | None = None,
) -> tuple[Ticket, Message]:
    """Store an agent message to the customer (outbound, author agent). The first reply on an assigned
    ticket starts it (assigned → processing, with its audit row)."""
    text = content.strip()
    if not text:
        raise BadRequest("content is required", "CS_REQ_4001")
    async with store.begin() as uow:
        tx = uow.tx
        ticket = await _load_for_change(tx, ticket_id)
        _require_assignee_or_staff(actor, ticket, "reply to")
        now = utcnow()
        for _attempt in range(2):
            status = TicketStatus(ticket.status)
            if status not in REPLYABLE_STATUSES:
                raise Conflict(f"cannot reply to a ticket in state {status.value}", REPLY_CONFLICT_CODE)
            if status is TicketStatus.ASSIGNED:
                try:
                    await _transition(
                        uow,
                        ticket,
                        Action.START,
                        actor_type=actor.role.value,
                        actor_id=actor.id,
                        now=now,
                        values={"first_agent_reply_at": ticket.first_agent_reply_at or now},
                        request_id=request_id,
                    )
                    break
                except Conflict:  # a concurrent change: look again
                    await tx.refresh(ticket)
                    continue
            touched = await tx.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.status == TicketStatus.PROCESSING.value)
                .values(updated_at=now, first_agent_reply_at=func.coalesce(Ticket.first_agent_reply_at, now))
                .execution_options(synchronize_session=False)
            )
            if _rowcount(touched) == 1:
                break
            await tx.refresh(ticket)
        else:
            raise Conflict(
                "the ticket was changed concurrently; reload it and try again", REPLY_CONFLICT_CODE
            )
        message = Message(
            id=uuid.uuid4(),
            session_id=ticket.session_id,
            direction=Direction.OUTBOUND.value,
            author_type=AuthorType.AGENT.value,
            author_id=str(actor.id),
            content=text,
            content_type="text",
            truncated=False,
            created_at=now,
        )
        tx.add(message)
        await conversations.touch(tx, ticket.session_id, now=now)
        # delivery to the customer goes through the outbox (``agent.replied``) to the session's
        # platform or channel callback; the message stays ``sent_at`` NULL in our records
        await tx.flush()
        session = await tx.get(Session, ticket.session_id)
        if session is not None:
            uow.publish(
                session,
                EventType.AGENT_REPLIED,
                {"message_id": message.id, "content": text, "agent_id": actor.id, "agent_name": actor.name},
                ticket_id=ticket.id,
            )
        await tx.refresh(ticket)
        return ticket, message


async def add_note(store: Store, ticket_id: uuid.UUID, *, actor: Actor, body: str) -> TicketNote:
    """A private note for the back office; never part of the customer conversation."""
    text = body.strip()
    if not text:
        raise BadRequest("note body is required", "CS_REQ_4001")
    async with store.begin() as uow:
        tx = uow.tx
        ticket = await _load(tx, ticket_id)
        require_visible(actor, ticket)
        note = TicketNote(id=uuid.uuid4(), ticket_id=ticket.id, author_id=actor.principal_id, body=text)
        tx.add(note)
        await tx.flush()
        return note


# --- auto-assignment ------------------------------------------------------------------------------


async def auto_assign_pending(store: Store) -> int:
    """Give open, unassigned tickets (priority, then oldest first) to available agents, each time to
    the one with the fewest active tickets below its capacity. Returns how many were assigned.

    Safe with any number of processes: on PostgreSQL the eligible agents are locked (``FOR UPDATE``,
    in id order) before their load is counted, so two runs never overfill an agent, and tickets are
    claimed with ``FOR UPDATE SKIP LOCKED`` plus the conditional update, so no ticket is assigned
    twice. On SQLite the whole run is one ``BEGIN IMMEDIATE`` transaction.
    """
    async with store.begin() as uow:
        tx = uow.tx
        agents_stmt = (
            select(Principal)
            .where(
                Principal.role == Role.AGENT.value,
                Principal.active.is_(True),
                Principal.available.is_(True),
                Principal.capacity > 0,
            )
            .order_by(Principal.id)
        )
        agents = list((await tx.execute(for_update(agents_stmt, store.dialect))).scalars())
        if not agents:
            return 0
        load_rows = await tx.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.in_([a.id for a in agents]), Ticket.status.in_(_WORKING_VALUES))
            .group_by(Ticket.assignee_id)
        )
        load: dict[uuid.UUID, int] = {a.id: 0 for a in agents}
        for assignee_id, count in load_rows:
            if assignee_id is not None:
                load[assignee_id] = int(count)
        free = sum(max(0, a.capacity - load[a.id]) for a in agents)
        if free <= 0:
            return 0
        tickets_stmt = (
            select(Ticket)
            .where(and_(Ticket.status == TicketStatus.OPEN.value, Ticket.assignee_id.is_(None)))
            .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
            .limit(free)
        )
        claimed = for_update(tickets_stmt, store.dialect, skip_locked=True)
        tickets = list((await tx.execute(claimed)).scalars())
        assigned = 0
        for ticket in tickets:
            candidates = [a for a in agents if load[a.id] < a.capacity]
            if not candidates:
                break
            agent = min(candidates, key=lambda a: (load[a.id], a.name))
            now = utcnow()
            try:
                await _transition(
                    uow,
                    ticket,
                    Action.ASSIGN,
                    actor_type="system",
                    actor_id=None,
                    now=now,
                    values={"assignee_id": agent.id, "first_assigned_at": ticket.first_assigned_at or now},
                    details={"assignee_id": str(agent.id), "auto": True},
                )
            except Conflict:  # taken by someone else meanwhile
                continue
            load[agent.id] += 1
            assigned += 1
        return assigned


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


async def auto_close_resolved(store: Store, *, quiet_seconds: int, batch: int = 100) -> int:
    """Close tickets resolved more than ``quiet_seconds`` ago (the contract's "automatically after a
    quiet period"), as the system, one audit row each; their sessions go back to the bot.

    Each ticket is closed with the same conditional update as a manual close, so several processes
    may run this at once: a ticket another process closed first is simply skipped.
    """
    cutoff = utcnow() - timedelta(seconds=quiet_seconds)
    async with store.read() as tx:
        ids = (
            (
                await tx.execute(
                    select(Ticket.id)
                    .where(Ticket.status == TicketStatus.RESOLVED.value, Ticket.resolved_at < cutoff)
                    .order_by(Ticket.resolved_at)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
    closed = 0
    for ticket_id in ids:
        try:
            async with store.begin() as uow:
                tx = uow.tx
                ticket = await _load_for_change(tx, ticket_id)
                if ticket.status != TicketStatus.RESOLVED.value:
                    continue
                now = utcnow()
                await _transition(
                    uow,
                    ticket,
                    Action.CLOSE,
                    actor_type="system",
                    actor_id=None,
                    now=now,
                    values={"closed_at": now},
                    details={"reason": "quiet_period", "quiet_seconds": quiet_seconds},
                )
                await _hand_back(tx, ticket.session_id, now)
                closed += 1
        except Conflict:
            continue
    return closed
