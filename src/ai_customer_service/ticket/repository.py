"""Writes to ``cs_tickets`` inside the caller's transaction (never commits)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import ACTIVE_STATUSES, Priority, TicketStatus


async def active_for_session(tx: AsyncSession, session_id: uuid.UUID) -> Ticket | None:
    """The session's ticket that still needs a human (open, assigned or processing), if any."""
    stmt = select(Ticket).where(
        Ticket.session_id == session_id, Ticket.status.in_([s.value for s in ACTIVE_STATUSES])
    )
    return (await tx.execute(stmt)).scalar_one_or_none()


async def create_for_handoff(
    tx: AsyncSession,
    *,
    session_id: uuid.UUID,
    channel: str,
    open_id: str,
    reason: str,
    priority: Priority,
    subject: str,
    context: dict[str, Any],
    ticket_id: uuid.UUID | None = None,
) -> Ticket:
    """Insert an ``open`` ticket. Its creation is audited by the caller's ``message_processed`` or
    ``handoff`` row (ticket audit rows are one per *transition*, as the runbook's chain expects)."""
    ticket = Ticket(
        id=ticket_id or uuid.uuid4(),
        session_id=session_id,
        channel=channel,
        open_id=open_id,
        status=TicketStatus.OPEN.value,
        priority=priority.value,
        reason=reason,
        subject=subject[:200],
        context=context,
    )
    tx.add(ticket)
    await tx.flush()
    return ticket
