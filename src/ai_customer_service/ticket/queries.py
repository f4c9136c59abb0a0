"""Read side of tickets: the filtered list, one ticket with its conversation, and the stats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import Principal, Role
from ai_customer_service.conversation.models import Feedback, Message
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import TICKET_NOT_FOUND, NotFound
from ai_customer_service.pagination import Page, offset
from ai_customer_service.ticket.models import ACTIVE_SQL, Ticket, TicketNote
from ai_customer_service.ticket.service import require_visible
from ai_customer_service.ticket.states import ACTIVE_STATUSES, Priority, TicketStatus
from ai_customer_service.values import percentile

# stats are for supervisors and admins: no per-agent visibility filter
_EVERYONE = Actor(uuid.UUID(int=0), "stats", Role.ADMIN)


@dataclass(frozen=True)
class TicketFilter:
    statuses: Sequence[TicketStatus] = ()
    priorities: Sequence[Priority] = ()
    assignee: uuid.UUID | None = None
    assignee_name: str | None = None  # a principal's name (trusted-header mode: the gateway's id)
    unassigned: bool = False
    channel: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[Message]
    notes: list[TicketNote]


def _conditions(f: TicketFilter, actor: Actor) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if actor.is_agent:  # the unassigned queue and their own tickets
        conds.append(
            or_(
                and_(Ticket.status == TicketStatus.OPEN.value, Ticket.assignee_id.is_(None)),
                Ticket.assignee_id == actor.id,
            )
        )
    if f.statuses and frozenset(f.statuses) == ACTIVE_STATUSES:
        # as literal SQL (not bound parameters), so the partial index ix_cs_tickets_inbox applies
        conds.append(literal_column(ACTIVE_SQL, Boolean))
    elif f.statuses:
        conds.append(Ticket.status.in_([s.value for s in f.statuses]))
    if f.priorities:
        conds.append(Ticket.priority.in_([p.value for p in f.priorities]))
    if f.unassigned:
        conds.append(Ticket.assignee_id.is_(None))
    elif f.assignee is not None:
        conds.append(Ticket.assignee_id == f.assignee)
    elif f.assignee_name is not None:
        conds.append(Ticket.assignee_id.in_(select(Principal.id).where(Principal.name == f.assignee_name)))
    if f.channel:
        conds.append(Ticket.channel == f.channel)
    if f.created_from is not None:
        conds.append(Ticket.created_at >= f.created_from)
    if f.created_to is not None:
        conds.append(Ticket.created_at < f.created_to)
    return conds


async def list_tickets(
    db: Database, *, actor: Actor, filters: TicketFilter, page: int, page_size: int
) -> Page[Ticket]:
    """Sorted by priority (P1 first), then age (oldest first)."""
    conds = _conditions(filters, actor)
    async with db.sessionmaker() as tx:  # a plain read: no write lock on SQLite
        total = (await tx.execute(select(func.count()).select_from(Ticket).where(*conds))).scalar_one()
        rows = await tx.execute(
            select(Ticket)
            .where(*conds)
            .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
            .offset(offset(page, page_size))
            .limit(page_size)
        )
        return Page[Ticket](items=list(rows.scalars()), total=int(total), page=page, page_size=page_size)


async def get_ticket(db: Database, ticket_id: uuid.UUID, *, actor: Actor) -> TicketDetail:
    """The ticket, its session's messages (oldest first) and its private notes (back office only)."""
    async with db.sessionmaker() as tx:  # a plain read: no write lock on SQLite
        ticket = await tx.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound("ticket not found", TICKET_NOT_FOUND)
        require_visible(actor, ticket)
        return TicketDetail(ticket, await _messages(tx, ticket.session_id), await _notes(tx, ticket.id))


async def _messages(tx: AsyncSession, session_id: uuid.UUID) -> list[Message]:
    rows = await tx.execute(
        select(Message).where(Message.session_id == session_id).order_by(Message.created_at, Message.id)
    )
    return list(rows.scalars())


async def _notes(tx: AsyncSession, ticket_id: uuid.UUID) -> list[TicketNote]:
    rows = await tx.execute(
        select(TicketNote).where(TicketNote.ticket_id == ticket_id).order_by(TicketNote.created_at)
    )
    return list(rows.scalars())


# --- stats ----------------------------------------------------------------------------------------


def summarise(durations: list[float]) -> dict[str, Any]:
    values = sorted(durations)
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p90": None}
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 3),
        "p50": round(percentile(values, 0.5), 3),
        "p90": round(percentile(values, 0.9), 3),
    }


async def ticket_stats(
    db: Database, *, created_from: datetime | None = None, created_to: datetime | None = None
) -> dict[str, Any]:
    """Counts by status/priority/channel, handoffs by reason, time-to-X summaries (seconds from
    ticket creation), and CSAT over tickets (and feedback) created in the range."""
    conds = _conditions(TicketFilter(created_from=created_from, created_to=created_to), _EVERYONE)
    out: dict[str, Any] = {}
    async with db.reader() as tx:

        async def grouped(column: Any) -> dict[str, int]:
            rows = await tx.execute(select(column, func.count()).where(*conds).group_by(column))
            return {str(key): int(n) for key, n in rows}

        by_status = await grouped(Ticket.status)
        out["total"] = sum(by_status.values())
        out["by_status"] = {s.value: by_status.get(s.value, 0) for s in TicketStatus}
        by_priority = await grouped(Ticket.priority)
        out["by_priority"] = {p.value: by_priority.get(p.value, 0) for p in Priority}
        out["by_channel"] = await grouped(Ticket.channel)
        out["handoffs_by_reason"] = await grouped(Ticket.reason)
        times = await tx.execute(
            select(
                Ticket.created_at, Ticket.first_assigned_at, Ticket.first_agent_reply_at, Ticket.resolved_at
            ).where(*conds)
        )
        to_assign: list[float] = []
        to_reply: list[float] = []
        to_resolve: list[float] = []
        for created, assigned, replied, resolved in times:
            for moment, bucket in ((assigned, to_assign), (replied, to_reply), (resolved, to_resolve)):
                if moment is not None:
                    bucket.append(max(0.0, (moment - created).total_seconds()))
        out["time_to_first_assignment_seconds"] = summarise(to_assign)
        out["time_to_first_agent_reply_seconds"] = summarise(to_reply)
        out["time_to_resolution_seconds"] = summarise(to_resolve)
        feedback_conds: list[ColumnElement[bool]] = []
        if created_from is not None:
            feedback_conds.append(Feedback.created_at >= created_from)
        if created_to is not None:
            feedback_conds.append(Feedback.created_at < created_to)
        avg, count = (
            await tx.execute(select(func.avg(Feedback.score), func.count(Feedback.id)).where(*feedback_conds))
        ).one()
        out["csat"] = {"average": None if avg is None else round(float(avg), 3), "count": int(count)}
    return out
