from __future__ import annotations

from sqlalchemy import select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.auth.models import Role
from ai_customer_service.conversation.models import Session
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket import service
from ai_customer_service.ticket.models import Ticket
from tests.support.tickets import open_ticket, principal


async def test_resolved_tickets_close_after_the_quiet_period(db: Database) -> None:
    agent = await principal(db, "closer-agent", Role.AGENT)
    ticket = await open_ticket(db)
    await service.assign(db, ticket.id, actor=agent.actor, agent_id=None)
    await service.resolve(db, ticket.id, actor=agent.actor, resolution="done")

    assert await service.auto_close_resolved(db, quiet_seconds=3600) == 0  # still within the period
    assert await service.auto_close_resolved(db, quiet_seconds=0) == 1
    assert await service.auto_close_resolved(db, quiet_seconds=0) == 0  # nothing left, nothing twice

    async with db.sessionmaker() as tx:
        closed = await tx.get(Ticket, ticket.id)
        assert closed is not None and closed.status == "closed" and closed.closed_at is not None
        session = await tx.get(Session, closed.session_id)
        assert session is not None and session.status == "idle"
        rows = (
            (
                await tx.execute(
                    select(AuditLog).where(AuditLog.object_id == str(ticket.id), AuditLog.action == "close")
                )
            )
            .scalars()
            .all()
        )
    assert len(rows) == 1 and rows[0].actor_type == "system" and rows[0].before_state == "resolved"
