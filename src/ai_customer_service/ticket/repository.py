"""Writes to ``cs_tickets`` inside the caller's transaction (never commits)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.db import driver
from ai_customer_service.db.base import utcnow
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import ACTIVE_STATUSES, Priority, TicketStatus


async def active_for_session(tx: AsyncSession, session_id: uuid.UUID) -> Ticket | None:
    """The session's ticket that still needs a human (open, assigned or processing), if any."""
    stmt = select(Ticket).where(
        Ticket.session_id == session_id, Ticket.status.in_([s.value for s in ACTIVE_STATUSES])
    )
    return (await tx.execute(stmt)).scalar_one_or_none()


def handoff_row(
    *,
    session_id: uuid.UUID,
    channel: str,
    open_id: str,
    reason: str,
    priority: Priority,
    subject: str,
    context: dict[str, Any],
    ticket_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A complete ``cs_tickets`` row of a ticket a handoff opens (status ``open``)."""
    now = now or utcnow()
    return {
        "id": ticket_id or uuid.uuid4(),
        "session_id": session_id,
        "channel": channel,
        "open_id": open_id,
        "status": TicketStatus.OPEN.value,
        "priority": priority.value,
        "reason": reason,
        "subject": subject[:200],
        "context": context,
        "assignee_id": None,
        "resolution": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "first_assigned_at": None,
        "first_agent_reply_at": None,
        "resolved_at": None,
        "closed_at": None,
    }


_tickets: Table = Ticket.__table__  # type: ignore[assignment]
_INSERT_TICKET = insert(_tickets)


async def insert_for_handoff(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert a :func:`handoff_row` with one pre-built statement (the message path; no ORM
    session). Its creation is audited by the caller's row, as with :func:`create_for_handoff`."""
    await driver.execute(conn, _INSERT_TICKET, row)


async def create_for_handoff(tx: AsyncSession, row: dict[str, Any]) -> Ticket:
    """Insert a :func:`handoff_row` through the ORM session (the staff's manual handoff), returning
    the ticket. Its creation is audited by the caller's ``message_processed`` or ``handoff`` row
    (ticket audit rows are one per *transition*, as the runbook's chain expects)."""
    ticket = Ticket(**row)
    tx.add(ticket)
    await tx.flush()
    return ticket
