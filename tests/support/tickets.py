"""Fixtures' building blocks for the ticket tests: principals with tokens, sessions with tickets.

Tickets are created directly through the repository (as the webhook's handoff will)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import Role
from ai_customer_service.auth.service import create_principal
from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.db.engine import Database
from ai_customer_service.outbox.publisher import EventPublisher
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.repository import create_for_handoff, handoff_row
from ai_customer_service.ticket.states import Priority
from ai_customer_service.uow import Store


def units(db: Database) -> Store:
    """The database with an event publisher of its settings, as the ticket services take it."""
    return Store(db, EventPublisher(db.settings))


@dataclass(frozen=True)
class Who:
    id: uuid.UUID
    name: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.name, self.role)


async def principal(db: Database, name: str, role: Role = Role.AGENT, capacity: int = 5) -> Who:
    created = await create_principal(db, name=name, role=role, capacity=capacity)
    return Who(created.principal.id, name, role, created.token)


async def open_ticket(
    db: Database,
    *,
    channel: str = "widget",
    priority: Priority = Priority.P2,
    reason: str = "refund",
    created_at: datetime | None = None,
    customer_message: str | None = "我要退款",
    **fields: Any,
) -> Ticket:
    """A session in ``handoff`` with one ``open`` ticket (and the customer's message)."""
    async with db.transaction() as tx:
        session = Session(channel=channel, open_id=uuid.uuid4().hex, status="handoff")
        tx.add(session)
        await tx.flush()
        if customer_message:
            tx.add(
                Message(
                    session_id=session.id,
                    direction="inbound",
                    author_type="customer",
                    content=customer_message,
                    content_type="text",
                    truncated=False,
                )
            )
        ticket = await create_for_handoff(
            tx,
            handoff_row(
                session_id=session.id,
                channel=channel,
                open_id=session.open_id,
                reason=reason,
                priority=priority,
                subject=customer_message or "help",
                context={},
            ),
        )
        if created_at is not None:
            ticket.created_at = created_at
        for key, value in fields.items():
            setattr(ticket, key, value)
    return ticket


async def get_ticket(db: Database, ticket_id: uuid.UUID) -> Ticket:
    async with db.transaction() as tx:
        ticket = await tx.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


async def session_status(db: Database, session_id: uuid.UUID) -> str:
    async with db.transaction() as tx:
        return (await tx.execute(select(Session.status).where(Session.id == session_id))).scalar_one()


async def ticket_audit_count(db: Database, ticket_id: uuid.UUID, action: str | None = None) -> int:
    stmt = (
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.object_type == "ticket", AuditLog.object_id == str(ticket_id))
    )
    if action:
        stmt = stmt.where(AuditLog.action == action)
    async with db.transaction() as tx:
        return int((await tx.execute(stmt)).scalar_one())
