"""Concurrent transitions on one ticket: exactly one winner, one audit row (contract §8).

In-process HTTP with asyncio.gather: real parallel transactions on PostgreSQL; SQLite serialises
writers (BEGIN IMMEDIATE), which the same assertions must survive."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import select

from ai_customer_service.auth.models import Role
from ai_customer_service.config import Settings
from ai_customer_service.conversation.models import Session
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket import service
from tests.integration.conftest import API
from tests.support.tickets import open_ticket, principal, ticket_audit_count, units
from tests.support.webhooks import WEBHOOK, message, signed


async def test_twenty_agents_claim_one_ticket(api: httpx.AsyncClient, db: Database) -> None:
    agents = [await principal(db, f"agent{i:02d}", Role.AGENT) for i in range(20)]
    ticket = await open_ticket(db)
    responses = await asyncio.gather(
        *(
            api.post(f"/tickets/{ticket.id}/assign", json={"agent_id": str(a.id)}, headers=a.headers)
            for a in agents
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 19}, [r.text for r in responses if r.status_code not in (200, 409)]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"CS_TKT_4002"}
    winner = next(r for r in responses if r.status_code == 200).json()["assignee_id"]
    assert winner in {str(a.id) for a in agents}
    assert await ticket_audit_count(db, ticket.id) == 1


async def test_twenty_concurrent_resolves(api: httpx.AsyncClient, db: Database) -> None:
    agent = await principal(db, "owner", Role.AGENT)
    sups = [await principal(db, f"sup{i}", Role.SUPERVISOR) for i in range(4)]
    ticket = await open_ticket(db)
    await service.assign(units(db), ticket.id, actor=agent.actor, agent_id=None)
    callers = [agent, *sups] * 4
    responses = await asyncio.gather(
        *(
            api.post(f"/tickets/{ticket.id}/resolve", json={"resolution": f"by {c.name}"}, headers=c.headers)
            for c in callers
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 19}, [r.text for r in responses if r.status_code not in (200, 409)]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"CS_TICKET_4092"}
    assert await ticket_audit_count(db, ticket.id, "resolve") == 1


async def test_staff_actions_and_customer_messages_do_not_deadlock(
    api: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """A customer message locks its session and then reopens the resolved ticket; a supervisor's close
    (or reopen, or an agent's reply) changes the ticket and then the session. Both lock the session
    first, so racing them gives a clean winner every time: never a deadlock, never a 500."""
    agent = await principal(db, "owner", Role.AGENT)
    sup = await principal(db, "sup", Role.SUPERVISOR)
    for round_ in range(12):
        ticket = await open_ticket(db)
        await service.assign(units(db), ticket.id, actor=agent.actor, agent_id=None)
        await service.resolve(units(db), ticket.id, actor=agent.actor, resolution="refunded")
        session_id = ticket.session_id
        async with db.transaction() as tx:
            open_id = (await tx.execute(select(Session.open_id).where(Session.id == session_id))).scalar_one()
        body, headers = signed(
            message("还有一个问题", open_id=open_id, message_id=f"m-{round_}"), settings.webhook_secret
        )
        staff = (
            api.post(f"/tickets/{ticket.id}/close", json={}, headers=sup.headers)
            if round_ % 2 == 0
            else api.post(f"/tickets/{ticket.id}/reply", json={"content": "hi"}, headers=agent.headers)
        )
        responses = await asyncio.gather(
            staff, api.post(WEBHOOK.removeprefix(API), content=body, headers=headers)
        )
        # 409/403: the customer's message reopened the ticket first (back to the queue, unassigned)
        assert {r.status_code for r in responses} <= {200, 403, 409}, [r.text for r in responses]
        assert responses[1].status_code == 200
