"""The ticket workflow over HTTP (contract §8): the runbook chain, codes, roles, hand-back, reopen."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from ai_customer_service.auth.models import Role
from ai_customer_service.conversation import repository as conversations
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket import service
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import Priority
from ai_customer_service.webhook import facts
from tests.integration.conftest import MakeClient
from tests.support.tickets import (
    Who,
    get_ticket,
    open_ticket,
    principal,
    session_status,
    ticket_audit_count,
    units,
)


@pytest.fixture
async def team(db: Database) -> dict[str, Who]:
    return {
        "sup": await principal(db, "sup", Role.SUPERVISOR),
        "a1": await principal(db, "a1", Role.AGENT),
        "a2": await principal(db, "a2", Role.AGENT),
        "admin": await principal(db, "root", Role.ADMIN),
    }


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_runbook_chain_has_three_audit_rows_and_hands_the_session_back(
    api: httpx.AsyncClient, db: Database, team: dict[str, Who]
) -> None:
    sup, a1 = team["sup"], team["a1"]
    ticket = await open_ticket(db)
    tid = ticket.id
    r = await api.post(f"/tickets/{tid}/assign", json={"agent_id": str(a1.id)}, headers=sup.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "assigned" and r.json()["assignee_id"] == str(a1.id)
    r = await api.post(f"/tickets/{tid}/resolve", json={"resolution": "refunded"}, headers=a1.headers)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert await session_status(db, ticket.session_id) == "handoff"  # default hand-back is on close
    r = await api.post(f"/tickets/{tid}/close", headers=sup.headers)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["resolution"] == "refunded"
    assert await session_status(db, ticket.session_id) == "idle"

    audit = await api.get(
        "/audit",
        params={"object_type": "ticket", "object_id": str(tid), "order": "asc"},
        headers=sup.headers,
    )
    items = audit.json()["items"]
    assert [(i["action"], i["before_state"], i["after_state"]) for i in items] == [
        ("assign", "open", "assigned"),
        ("resolve", "assigned", "resolved"),
        ("close", "resolved", "closed"),
    ]
    assert [i["actor_id"] for i in items] == [str(sup.id), str(a1.id), str(sup.id)]
    for item in items:
        uuid.UUID(item["id"])
        assert item["object_type"] == "ticket" and item["object_id"] == str(tid) and item["created_at"]


async def test_every_illegal_transition_has_its_409_code(
    api: httpx.AsyncClient, db: Database, team: dict[str, Who]
) -> None:
    sup, a1 = team["sup"], team["a1"]
    t = (await open_ticket(db)).id

    async def act(action: str, **kw: object) -> httpx.Response:
        return await api.post(f"/tickets/{t}/{action}", headers=sup.headers, **kw)  # type: ignore[arg-type]

    # open: resolve, close, reopen are illegal
    assert code(await act("resolve", json={"resolution": "x"})) == "CS_TICKET_4092"
    assert code(await act("close", json={"resolution": "x"})) == "CS_TICKET_4093"
    assert code(await act("reopen")) == "CS_TICKET_4094"
    assert (await act("assign", params={"agent_id": str(a1.id)})).status_code == 200  # query-param form
    # assigned: close, reopen illegal; same assignee again is a conflict
    assert code(await act("close")) == "CS_TICKET_4093"
    assert code(await act("reopen")) == "CS_TICKET_4094"
    assert code(await act("assign", json={"agent_id": str(a1.id)})) == "CS_TKT_4002"
    r = await act("resolve", params={"resolution": "done"})  # query-param form
    assert r.status_code == 200 and r.json()["resolution"] == "done"
    # resolved: assign, resolve illegal
    assert code(await act("assign", json={"agent_id": str(a1.id)})) == "CS_TKT_4002"
    assert code(await act("resolve", json={"resolution": "again"})) == "CS_TICKET_4092"
    assert (await act("close")).status_code == 200
    # closed: everything but reopen is illegal
    assert code(await act("assign", json={"agent_id": str(a1.id)})) == "CS_TKT_4002"
    assert code(await act("resolve", json={"resolution": "x"})) == "CS_TICKET_4092"
    assert code(await act("close")) == "CS_TICKET_4093"
    r = await act("reopen")
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["assignee_id"] is None
    assert await session_status(db, (await get_ticket(db, t)).session_id) == "handoff"
    assert await ticket_audit_count(db, t) == 4  # assign, resolve, close, reopen: no row for a 409
    assert await ticket_audit_count(db, t, "reopen") == 1


async def test_bad_requests_404_and_403(api: httpx.AsyncClient, db: Database, team: dict[str, Who]) -> None:
    sup, a1, a2 = team["sup"], team["a1"], team["a2"]
    t = (await open_ticket(db)).id
    for bad in (uuid.uuid4(), "not-a-uuid"):
        r = await api.post(f"/tickets/{bad}/assign", json={"agent_id": str(a1.id)}, headers=sup.headers)
        assert r.status_code == 404 and code(r) == "CS_TICKET_4001"
        assert code(await api.get(f"/tickets/{bad}", headers=sup.headers)) == "CS_TICKET_4001"
    assert code(await api.post(f"/tickets/{t}/assign", headers=sup.headers)) == "CS_REQ_4005"
    r = await api.post(f"/tickets/{t}/assign", json={"agent_id": str(uuid.uuid4())}, headers=sup.headers)
    # renamed CS_TKT_4003 (one ticket prefix, CHANGELOG); the old spelling comes along in aliases
    assert r.status_code == 400 and code(r) == "CS_TICKET_4003"
    assert r.json()["error"]["aliases"] == ["CS_TKT_4003"]
    # an agent may only claim for itself
    r = await api.post(f"/tickets/{t}/assign", json={"agent_id": str(a2.id)}, headers=a1.headers)
    assert r.status_code == 403 and code(r) == "CS_AUTH_4001"
    assert (await api.post(f"/tickets/{t}/assign", headers=a1.headers)).status_code == 200  # claim
    # another agent: cannot resolve, view or take it over
    r = await api.post(f"/tickets/{t}/resolve", json={"resolution": "x"}, headers=a2.headers)
    assert r.status_code == 403 and code(r) == "CS_AUTH_4001"
    assert (await api.get(f"/tickets/{t}", headers=a2.headers)).status_code == 403
    r = await api.post(f"/tickets/{t}/assign", headers=a2.headers)
    assert r.status_code == 409 and code(r) == "CS_TKT_4002"
    # empty resolution; agents cannot close or reopen
    for body in ({}, {"resolution": "  "}):
        r = await api.post(f"/tickets/{t}/resolve", json=body, headers=a1.headers)
        assert r.status_code == 400 and code(r) == "CS_REQ_4006"
    assert (
        await api.post(f"/tickets/{t}/resolve", json={"resolution": "ok"}, headers=a1.headers)
    ).status_code == 200
    assert code(await api.post(f"/tickets/{t}/close", headers=a1.headers)) == "CS_AUTH_4001"
    r = await api.post(f"/tickets/{t}/close", json={"resolution": " "}, headers=sup.headers)
    assert r.status_code == 400 and code(r) == "CS_REQ_4007"
    r = await api.post(f"/tickets/{t}/resolve", json={"resolution": "x", "extra": 1}, headers=a1.headers)
    assert r.status_code == 400 and code(r) == "CS_REQ_4001"


async def test_reply_starts_the_ticket_and_notes_stay_private(
    api: httpx.AsyncClient, db: Database, team: dict[str, Who]
) -> None:
    sup, a1 = team["sup"], team["a1"]
    t = (await open_ticket(db)).id
    r = await api.post(f"/tickets/{t}/reply", json={"content": "hi"}, headers=sup.headers)
    assert r.status_code == 409 and code(r) == "CS_TICKET_4095"  # someone must take it first
    r = await api.post(f"/tickets/{t}/reply", json={"content": "hi"}, headers=a1.headers)
    assert r.status_code == 403  # not this agent's ticket (yet)
    await api.post(f"/tickets/{t}/assign", headers=a1.headers)
    r = await api.post(f"/tickets/{t}/reply", json={"content": "您好，正在为您处理退款"}, headers=a1.headers)
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["status"] == "processing"
    assert r.json()["ticket"]["first_agent_reply_at"] is not None
    r = await api.post(f"/tickets/{t}/reply", json={"content": "done soon"}, headers=a1.headers)
    assert r.status_code == 200 and r.json()["ticket"]["status"] == "processing"
    note = await api.post(f"/tickets/{t}/notes", json={"body": "customer is VIP"}, headers=a1.headers)
    assert note.status_code == 201 and note.json()["author_id"] == str(a1.id)

    detail = (await api.get(f"/tickets/{t}", headers=sup.headers)).json()
    msgs = [(m["direction"], m["author_type"], m["author_id"], m["content"]) for m in detail["messages"]]
    assert msgs == [
        ("inbound", "customer", None, "我要退款"),
        ("outbound", "agent", str(a1.id), "您好，正在为您处理退款"),
        ("outbound", "agent", str(a1.id), "done soon"),
    ]
    assert all("VIP" not in m["content"] for m in detail["messages"])
    assert [n["body"] for n in detail["notes"]] == ["customer is VIP"]
    assert await ticket_audit_count(db, t, "start") == 1  # only the first reply is a transition


async def test_list_filters_sorting_paging_and_agent_visibility(
    api: httpx.AsyncClient, db: Database, team: dict[str, Who]
) -> None:
    sup, a1, a2 = team["sup"], team["a1"], team["a2"]
    now = utcnow()
    old_p2 = await open_ticket(db, created_at=now - timedelta(hours=3))
    new_p1 = await open_ticket(db, priority=Priority.P1, created_at=now - timedelta(hours=1))
    old_p1 = await open_ticket(
        db, priority=Priority.P1, created_at=now - timedelta(hours=2), channel="wechat"
    )
    mine = await open_ticket(db, created_at=now - timedelta(hours=4))
    theirs = await open_ticket(db, created_at=now - timedelta(hours=5))
    await service.assign(units(db), mine.id, actor=a1.actor, agent_id=None)
    await service.assign(units(db), theirs.id, actor=a2.actor, agent_id=None)

    everything = (await api.get("/tickets", headers=sup.headers)).json()
    assert everything["total"] == 5 and everything["page"] == 1 and everything["page_size"] == 20
    assert [i["id"] for i in everything["items"]] == [
        str(x.id) for x in (old_p1, new_p1, theirs, mine, old_p2)
    ]
    agent_view = (await api.get("/tickets", headers=a1.headers)).json()
    assert {i["id"] for i in agent_view["items"]} == {str(x.id) for x in (old_p1, new_p1, old_p2, mine)}
    assert agent_view["total"] == 4

    async def ids(**params: str) -> list[str]:
        r = await api.get("/tickets", params=params, headers=sup.headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids(status="assigned") == [str(theirs.id), str(mine.id)]
    assert await ids(priority="P1", channel="wechat") == [str(old_p1.id)]
    assert await ids(assignee=str(a1.id)) == [str(mine.id)]
    assert len(await ids(assignee="none")) == 3
    cutoff = (now - timedelta(hours=2, minutes=30)).isoformat()
    assert set(await ids(created_from=cutoff)) == {str(new_p1.id), str(old_p1.id)}
    assert await ids(created_to=cutoff, status="open") == [str(old_p2.id)]
    page2 = (await api.get("/tickets", params={"page": 2, "page_size": 2}, headers=sup.headers)).json()
    assert [i["id"] for i in page2["items"]] == [str(theirs.id), str(mine.id)] and page2["total"] == 5
    assert code(await api.get("/tickets", params={"status": "bogus"}, headers=sup.headers)) == "CS_REQ_4001"
    assert (await api.get("/tickets")).status_code == 401


async def test_handback_on_resolve(make_client: MakeClient, db: Database, team: dict[str, Who]) -> None:
    api = await make_client(ticket_handback_on="resolve")
    t = await open_ticket(db)
    await api.post(f"/tickets/{t.id}/assign", headers=team["a1"].headers)
    r = await api.post(f"/tickets/{t.id}/resolve", json={"resolution": "ok"}, headers=team["a1"].headers)
    assert r.status_code == 200
    assert await session_status(db, t.session_id) == "idle"


async def _reopenable(db: Database, session_id: uuid.UUID, window_seconds: int) -> uuid.UUID | None:
    """What the webhook reads under the session lock: the ticket a customer message would reopen."""
    async with db.sessionmaker() as tx:
        state = await facts.read_state(
            await tx.connection(),
            session_id,
            source="",
            channel="widget",
            message_id=None,
            rate_limit_since=None,
            reopen_since=utcnow() - timedelta(seconds=window_seconds) if window_seconds > 0 else None,
        )
        return state.reopenable_ticket_id


async def test_customer_message_within_the_window_reopens(db: Database, team: dict[str, Who]) -> None:
    a1 = team["a1"]
    t = await open_ticket(db)
    await service.assign(units(db), t.id, actor=a1.actor, agent_id=None)
    await service.resolve(units(db), t.id, actor=a1.actor, resolution="ok")
    assert await _reopenable(db, t.session_id, 0) is None  # disabled
    assert await _reopenable(db, t.session_id, 86400) == t.id
    async with units(db).begin() as uow:
        reopened = await service.reopen_for_customer(uow, t.id, open_id="u-1", now=utcnow())
        assert reopened is not None and reopened.id == t.id and reopened.status == "open"
        await conversations.return_to_handoff(uow.tx, t.session_id, now=utcnow())
    assert await _reopenable(db, t.session_id, 86400) is None  # already active
    async with units(db).begin() as uow:  # a second attempt loses: the ticket is no longer resolved
        assert await service.reopen_for_customer(uow, t.id, open_id="u-1", now=utcnow()) is None
    assert await session_status(db, t.session_id) == "handoff"
    assert await ticket_audit_count(db, t.id, "reopen") == 1

    # outside the window nothing is reopened
    await service.assign(units(db), t.id, actor=a1.actor, agent_id=None)
    await service.resolve(units(db), t.id, actor=a1.actor, resolution="ok again")
    async with db.transaction() as tx:
        ticket = await tx.get(Ticket, t.id)
        assert ticket is not None
        ticket.resolved_at = utcnow() - timedelta(days=2)
    assert await _reopenable(db, t.session_id, 86400) is None
