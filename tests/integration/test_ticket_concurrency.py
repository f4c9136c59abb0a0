"""Concurrent transitions on one ticket: exactly one winner, one audit row (contract §8).

In-process HTTP with asyncio.gather: real parallel transactions on PostgreSQL; SQLite serialises
writers (BEGIN IMMEDIATE), which the same assertions must survive."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from ai_customer_service.auth.models import Role
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket import service
from tests.support.tickets import open_ticket, principal, ticket_audit_count


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
    await service.assign(db, ticket.id, actor=agent.actor, agent_id=None)
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
