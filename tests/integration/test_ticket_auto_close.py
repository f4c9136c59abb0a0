from __future__ import annotations

import httpx
from sqlalchemy import select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.auth.models import Role
from ai_customer_service.config import Settings
from ai_customer_service.conversation.models import Session
from ai_customer_service.db.engine import Database
from ai_customer_service.main import create_app
from ai_customer_service.ticket import service
from ai_customer_service.ticket.models import Ticket
from tests.conftest import TEST_SECRET
from tests.support.tickets import open_ticket, principal, units
from tests.support.webhooks import WEBHOOK, message, signed


async def test_resolved_tickets_close_after_the_quiet_period(db: Database) -> None:
    agent = await principal(db, "closer-agent", Role.AGENT)
    ticket = await open_ticket(db)
    await service.assign(units(db), ticket.id, actor=agent.actor, agent_id=None)
    await service.resolve(units(db), ticket.id, actor=agent.actor, resolution="done")

    assert await service.auto_close_resolved(units(db), quiet_seconds=3600) == 0  # still within the period
    assert await service.auto_close_resolved(units(db), quiet_seconds=0) == 1
    assert await service.auto_close_resolved(units(db), quiet_seconds=0) == 0  # nothing left, nothing twice

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


async def test_a_message_after_the_reopen_window_goes_back_to_the_bot(
    db: Database, settings: Settings
) -> None:
    """Resolved (not closed) ticket, window over: the customer is answered, not ignored."""
    agent = await principal(db, "window-agent", Role.AGENT)
    ticket = await open_ticket(db)
    await service.assign(units(db), ticket.id, actor=agent.actor, agent_id=None)
    await service.resolve(units(db), ticket.id, actor=agent.actor, resolution="done")
    async with db.sessionmaker() as tx:
        session = await tx.get(Session, ticket.session_id)
        assert session is not None and session.status == "handoff"
        channel, open_id = session.channel, session.open_id

    app = create_app(settings.model_copy(update={"ticket_reopen_window_seconds": 0}), db=db)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        raw, headers = signed(message("hello again", open_id=open_id, channel=channel), TEST_SECRET)
        body = (await client.post(WEBHOOK, content=raw, headers=headers)).json()
    assert body["reply"] and body["ticket_id"] == "" and body["handoff"] is False
