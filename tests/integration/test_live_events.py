"""The live-event bus on a real database: committed events reach subscribers, rolled-back ones never do,
resumption replays without a gap or a repeat, and a second hub (another replica) sees the same events."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.live import RESET, LiveHub, StreamClosed, publish_live
from ai_customer_service.live import hub as live_hub
from ai_customer_service.live.models import LiveEventRow
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed


async def _publish(
    db: Database, session_id: uuid.UUID | None, type: str = "agent.replied", **data: object
) -> None:
    async with db.transaction() as tx:
        publish_live(tx, type=type, session_id=session_id, data=dict(data))


@pytest.fixture
async def hub(db: Database) -> LiveHub:
    live = LiveHub(db, poll_interval_seconds=0.05)
    await live.start()
    yield live  # type: ignore[misc]
    await live.stop()


async def test_committed_events_reach_subscribers_and_rolled_back_ones_never_do(
    db: Database, hub: LiveHub
) -> None:
    session = uuid.uuid4()
    async with hub.subscribe() as sub:
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                publish_live(tx, type="agent.replied", session_id=session, data={"n": "rolled back"})
                await tx.flush()
                raise RuntimeError("abort")
        await _publish(db, session, n="committed", at=uuid.UUID(int=7))
        event = await sub.next(timeout=5)
        assert event is not None
        assert event.type == "agent.replied" and event.session_id == session
        assert event.data == {"n": "committed", "at": str(uuid.UUID(int=7))}
        assert event.to_json()["session_id"] == str(session)
        assert await sub.next(timeout=0.3) is None


async def test_a_session_subscription_sees_only_its_session(db: Database, hub: LiveHub) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    async with hub.subscribe(session_id=mine) as sub, hub.subscribe() as everything:
        await _publish(db, other, n=1)
        await _publish(db, mine, n=2)
        event = await sub.next(timeout=5)
        assert event is not None and event.data == {"n": 2}
        seen = [await everything.next(timeout=5), await everything.next(timeout=5)]
        assert [e.data["n"] for e in seen if e is not None] == [1, 2]


async def test_resuming_after_last_event_id_replays_then_follows_without_gap_or_repeat(
    db: Database, hub: LiveHub
) -> None:
    session = uuid.uuid4()
    async with hub.subscribe(session_id=session) as first:
        await _publish(db, session, n=1)
        one = await first.next(timeout=5)
    assert one is not None
    # the client is gone while two more events happen
    await _publish(db, session, n=2)
    await _publish(db, session, n=3)
    async with hub.subscribe(session_id=session, after_seq=one.seq) as resumed:
        await _publish(db, session, n=4)
        got = []
        while (event := await resumed.next(timeout=0.5)) is not None:
            got.append(event.data["n"])
    assert got == [2, 3, 4]


async def test_a_replay_longer_than_the_limit_becomes_one_reset(
    db: Database, hub: LiveHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_hub, "REPLAY_LIMIT", 3)
    session = uuid.uuid4()
    for n in range(5):
        await _publish(db, session, n=n)
    async with hub.subscribe(session_id=session, after_seq=0) as sub:
        event = await sub.next(timeout=1)
        assert event is not None and event.type == RESET
        assert await sub.next(timeout=0.2) is None


async def test_another_hub_on_the_same_database_sees_the_events(
    settings: Settings, db: Database, hub: LiveHub
) -> None:
    replica_db = Database(settings)  # its own engine and pool, like another process
    replica = LiveHub(replica_db, poll_interval_seconds=0.05)
    await replica.start()
    try:
        async with replica.subscribe() as sub:
            await hub.broadcast(type="typing", session_id=None, data={"agent": "a1"})
            event = await sub.next(timeout=5)
            assert event is not None and event.type == "typing" and event.data == {"agent": "a1"}
    finally:
        await replica.stop()
        await replica_db.dispose()


async def test_stopping_the_hub_closes_its_streams(db: Database) -> None:
    live = LiveHub(db, poll_interval_seconds=0.05)
    await live.start()
    async with live.subscribe() as sub:
        await live.stop()
        with pytest.raises(StreamClosed):
            await sub.next(timeout=1)
    assert live.subscribers == 0


def test_late_commits_below_the_highest_seq_are_delivered_in_order(db: Database) -> None:
    """PostgreSQL may commit seq 5 after seq 6: the hole is remembered and filled when 5 appears."""
    live = LiveHub(db)
    live._max_seen = 4

    def row(seq: int) -> LiveEventRow:
        return LiveEventRow(
            seq=seq, type="agent.replied", session_id=None, ticket_id=None, payload={}, created_at=None
        )

    first = live._track([row(6), row(8)], [])
    assert [e.seq for e in first] == [6, 8] and sorted(live._gaps) == [5, 7]
    second = live._track([row(9)], [row(5)])
    assert [e.seq for e in second] == [5, 9] and sorted(live._gaps) == [7]


async def test_a_webhook_message_and_its_answer_are_live_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    live: LiveHub = app.state.live
    async with live.subscribe() as sub:
        body, headers = signed(message("我要退款", open_id="live-1", message_id="live-m1"), TEST_SECRET)
        response = await client.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 200, response.text
        types = []
        while (event := await sub.next(timeout=2)) is not None:
            types.append(event.type)
            assert str(event.session_id) == response.json()["session_id"]
    assert types[0] == "message.received"
    assert {"handoff.triggered", "ticket.created", "reply.generated"} <= set(types)


async def test_a_resumed_stream_never_repeats_what_came_before_its_last_event_id(db: Database) -> None:
    """A client moving to a replica whose hub lags behind gets nothing at or below its Last-Event-ID."""
    session = uuid.uuid4()
    for n in range(3):
        await _publish(db, session, n=n)
    live = LiveHub(db)
    stored = await live.replay(session_id=session, after_seq=0)
    last = stored[-1].seq
    async with live.subscribe(session_id=session, after_seq=last) as sub:
        live._dispatch(stored)  # the lagging hub hands out events the client has already seen
        assert await sub.next(timeout=0.2) is None
