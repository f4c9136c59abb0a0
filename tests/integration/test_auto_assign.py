"""Auto-assignment: fewest active tickets first, never over capacity, oldest waiting ticket first."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from ai_customer_service.auth.models import Role
from ai_customer_service.config import Settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket import service
from ai_customer_service.ticket.models import Ticket
from tests.integration.conftest import MakeClient
from tests.support.tickets import get_ticket, open_ticket, principal, units


async def assignees(db: Database) -> dict[uuid.UUID, uuid.UUID | None]:
    async with db.transaction() as tx:
        rows = await tx.execute(select(Ticket.id, Ticket.assignee_id))
        return {tid: aid for tid, aid in rows}


async def test_three_agents_of_capacity_two_and_ten_tickets(db: Database, settings: Settings) -> None:
    agents = [await principal(db, f"agent{i}", Role.AGENT, capacity=2) for i in range(3)]
    away = await principal(db, "away", Role.AGENT, capacity=2)
    await service_set_away(db, away.id)
    await principal(db, "boss", Role.SUPERVISOR, capacity=5)  # supervisors are not auto-assigned
    start = utcnow() - timedelta(hours=1)
    tickets = [await open_ticket(db, created_at=start + timedelta(minutes=i)) for i in range(10)]

    # two runs at once, on two engines (two "processes"): no ticket twice, no agent overfilled
    other = Database(settings)
    try:
        results = await asyncio.gather(
            service.auto_assign_pending(units(db)), service.auto_assign_pending(units(other))
        )
    finally:
        await other.dispose()
    assert sum(results) == 6
    owners = await assignees(db)
    load = Counter(a for a in owners.values() if a is not None)
    assert load == {a.id: 2 for a in agents}
    waiting = [t.id for t in tickets if owners[t.id] is None]
    assert waiting == [t.id for t in tickets[6:]]  # the oldest were served first
    assert await service.auto_assign_pending(units(db)) == 0

    # resolving one frees a slot: the oldest waiting ticket gets it
    freed = tickets[0]
    owner = next(a for a in agents if a.id == owners[freed.id])
    await service.resolve(units(db), freed.id, actor=owner.actor, resolution="done")
    assert await service.auto_assign_pending(units(db)) == 1
    assert (await get_ticket(db, tickets[6].id)).assignee_id == owner.id
    assert (await get_ticket(db, tickets[7].id)).assignee_id is None


async def service_set_away(db: Database, principal_id: uuid.UUID) -> None:
    from ai_customer_service.auth.actor import Actor
    from ai_customer_service.auth.service import set_availability

    me = Actor(principal_id, "away", Role.AGENT)
    await set_availability(db, principal_id, actor=me, available=False, capacity=None)


async def test_the_worker_runs_when_enabled(make_client: MakeClient, db: Database) -> None:
    agent = await principal(db, "solo", Role.AGENT, capacity=1)
    ticket = await open_ticket(db)
    await make_client(auto_assign=True, auto_assign_interval_seconds=0.05)
    for _ in range(200):  # a bounded wait for the periodic job, not a timing assertion
        if (await get_ticket(db, ticket.id)).assignee_id is not None:
            break
        await asyncio.sleep(0.05)
    assert (await get_ticket(db, ticket.id)).assignee_id == agent.id
