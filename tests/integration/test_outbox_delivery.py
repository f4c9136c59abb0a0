"""The outbox end to end against a real HTTP receiver that verifies both signatures."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ai_customer_service.db.engine import Database
from ai_customer_service.outbox import repository, service
from ai_customer_service.outbox.events import EventType, emit
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent
from ai_customer_service.outbox.worker import OutboxWorker
from tests.support.outbox import (
    CALLBACK_SECRET,
    FakeClock,
    emit_one,
    outbox_settings,
    pending_count,
    run_until_idle,
)
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=CALLBACK_SECRET) as r:
        yield r


async def _event(db: Database, event_id: uuid.UUID) -> OutboxEvent:
    async with db.transaction() as tx:
        row = await repository.get(tx, event_id)
        assert row is not None
        return row


async def _attempts(db: Database, event_id: uuid.UUID) -> list[OutboxAttempt]:
    async with db.transaction() as tx:
        return list(await repository.attempts_of(tx, event_id))


async def test_emit_belongs_to_the_callers_transaction(db: Database) -> None:
    session_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            emit(tx, destination="sub2api", type=EventType.MESSAGE_RECEIVED, session_id=session_id, data={})
            raise RuntimeError("the change failed")
    assert await pending_count(db) == 0

    async with db.transaction() as tx:
        ids = [
            emit(tx, destination="sub2api", type=t, session_id=session_id, data={"n": n, "sid": session_id})
            for n, t in enumerate(
                [EventType.MESSAGE_RECEIVED, EventType.INTENT_RESOLVED, EventType.REPLY_GENERATED]
            )
        ]
    async with db.transaction() as tx:
        rows = (await tx.execute(select(OutboxEvent).order_by(OutboxEvent.seq))).scalars().all()
    assert [r.id for r in rows] == ids
    assert [r.payload["n"] for r in rows] == [0, 1, 2]
    assert rows[0].payload["sid"] == str(session_id)


async def test_signed_delivery_in_order_per_session(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url)
    # every third event fails its first delivery: later events of its session must wait for it
    receiver.behaviour = lambda p, nth: 500 if p["data"]["n"] % 3 == 0 and nth == 1 else 200
    sessions = [uuid.uuid4() for _ in range(4)]
    emitted: dict[str, list[str]] = defaultdict(list)
    for n in range(5):
        for sid in sessions:
            event_id = await emit_one(db, session_id=sid, data={"n": n})
            emitted[str(sid)].append(str(event_id))

    await run_until_idle(OutboxWorker(settings, db))

    assert receiver.bad_signatures == 0
    acked: dict[str, list[str]] = defaultdict(list)
    for got in receiver.received:
        sid = got.payload["session_id"]
        position = emitted[sid].index(got.payload["id"])
        # nothing of a session arrives before every earlier event of it was acknowledged
        assert acked[sid] == emitted[sid][:position]
        if got.answer == 200:
            acked[sid].append(got.payload["id"])
    assert acked == emitted
    first = receiver.received[0]
    assert set(first.payload) == {
        "id",
        "type",
        "occurred_at",
        "platform",
        "session_id",
        "ticket_id",
        "source_message_id",
        "attempt",
        "data",
    }
    assert first.payload["platform"] == "sub2api"
    assert first.headers["webhook-id"] == first.payload["id"]


async def test_one_drain_delivers_a_sessions_whole_sequence(db: Database, db_env, receiver: Receiver) -> None:
    """A handoff emits several events for one session; they go out in order within one poll, not
    one per poll interval."""
    settings = outbox_settings(db_env, receiver.url)
    sid = uuid.uuid4()
    emitted = [str(await emit_one(db, session_id=sid, data={"n": n})) for n in range(5)]
    report = await OutboxWorker(settings, db).drain()
    assert report.delivered == 5
    assert [got.payload["id"] for got in receiver.received] == emitted
    assert await pending_count(db) == 0


async def test_500_three_times_then_delivered_on_attempt_4(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url)
    receiver.behaviour = lambda p, nth: 500 if nth <= 3 else 200
    event_id = await emit_one(db, session_id=uuid.uuid4(), type=EventType.TICKET_CREATED)

    await run_until_idle(OutboxWorker(settings, db))

    event = await _event(db, event_id)
    assert (event.status, event.attempts, event.last_status) == ("delivered", 4, 200)
    assert event.delivered_at is not None and event.claimed_by is None
    attempts = await _attempts(db, event_id)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 500, "retry"),
        (3, 500, "retry"),
        (4, 200, "delivered"),
    ]
    assert all(a.response_excerpt and len(a.response_excerpt) <= 2048 for a in attempts)
    assert [r.payload["attempt"] for r in receiver.received] == [1, 2, 3, 4]


async def test_dead_after_retries_plus_one_attempts_then_replay_delivers(
    db: Database, db_env, receiver: Receiver
) -> None:
    settings = outbox_settings(db_env, receiver.url, AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES="2")
    receiver.behaviour = lambda p, nth: 500
    event_id = await emit_one(db, session_id=uuid.uuid4())
    worker = OutboxWorker(settings, db)
    await run_until_idle(worker)

    event = await _event(db, event_id)
    assert (event.status, event.attempts) == ("dead", 3)
    assert [a.outcome for a in await _attempts(db, event_id)] == ["retry", "retry", "dead"]

    receiver.behaviour = lambda p, nth: 200
    replayed = await service.replay_one(db, event_id, actor_id="test")
    assert replayed["status"] == "pending" and replayed["replays"] == 1
    await run_until_idle(worker)
    event = await _event(db, event_id)
    assert (event.status, event.attempts, event.replays) == ("delivered", 1, 1)
    assert [(a.round, a.attempt, a.outcome) for a in await _attempts(db, event_id)][-1] == (1, 1, "delivered")
    assert len(receiver.received) == 4


async def test_zero_retries_means_one_attempt(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url, AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES="0")
    receiver.behaviour = lambda p, nth: 503
    event_id = await emit_one(db, session_id=None)
    await run_until_idle(OutboxWorker(settings, db))
    assert (await _event(db, event_id)).status == "dead"
    assert len(receiver.received) == 1


async def test_later_event_waits_while_earlier_retries_but_not_behind_a_dead_one(
    db: Database, db_env, receiver: Receiver
) -> None:
    settings = outbox_settings(
        db_env,
        receiver.url,
        AI_CS_OUTBOX_RETRY_BASE_SECONDS="100",
        AI_CS_OUTBOX_RETRY_CAP_SECONDS="100",
        AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES="1",
    )
    clock = FakeClock()
    worker = OutboxWorker(settings, db, clock=clock)
    receiver.behaviour = lambda p, nth: 500 if p["data"]["n"] == 1 else 200
    sid = uuid.uuid4()
    first = await emit_one(db, session_id=sid, data={"n": 1})
    second = await emit_one(db, session_id=sid, data={"n": 2})
    other = await emit_one(db, session_id=uuid.uuid4(), data={"n": 3})

    report = await worker.run_once()
    # the second is claimed in its session's run, but given back unattempted behind the retry
    assert (report.claimed, report.delivered, report.retried, report.released) == (3, 1, 1, 1)
    assert second not in {uuid.UUID(i) for i in receiver.ids()}
    assert (await _event(db, first)).status == "pending"
    clock.advance(0.001)
    assert (await worker.run_once()).claimed == 0  # first is retrying later: second still waits
    assert (await _event(db, second)).status == "pending"
    assert (await _event(db, other)).status == "delivered"

    clock.advance(101)  # first is due again, fails its last try and is dead-lettered
    report = await worker.run_once()
    # a dead event does not block its session: the second goes out right behind it, in the same run
    assert (report.dead, report.delivered) == (1, 1)
    assert (await _event(db, second)).status == "delivered"


async def test_two_workers_never_deliver_the_same_claim(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url, AI_CS_OUTBOX_BATCH_SIZE="7")
    sessions = [uuid.uuid4() for _ in range(10)]
    async with db.transaction() as tx:
        for n in range(80):
            emit(
                tx,
                destination="sub2api",
                type=EventType.MESSAGE_RECEIVED,
                session_id=sessions[n % 10],
                data={},
            )
    second_db = Database(settings)  # its own engine and pool: a second process, as far as the DB knows
    try:
        w1, w2 = OutboxWorker(settings, db, name="w1"), OutboxWorker(settings, second_db, name="w2")
        await run_until_idle(w1, w2)
    finally:
        await second_db.dispose()
    ids = receiver.ids()
    assert len(ids) == 80 and len(set(ids)) == 80
    async with db.transaction() as tx:
        workers = set((await tx.execute(select(OutboxAttempt.worker))).scalars().all())
        attempts = set((await tx.execute(select(OutboxEvent.attempts))).scalars().all())
    assert attempts == {1}
    assert workers <= {"w1", "w2"}


async def test_concurrent_claims_are_disjoint(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url)
    async with db.transaction() as tx:
        for _ in range(30):
            emit(tx, destination="sub2api", type=EventType.MESSAGE_RECEIVED, session_id=None, data={})
    other = Database(settings)
    try:

        async def claim(database: Database, name: str) -> set[uuid.UUID]:
            async with database.transaction() as tx:
                events = await repository.claim(
                    tx, worker=name, now=FakeClock()(), lease_seconds=60, limit=20
                )
                await asyncio.sleep(0.05)  # hold the lock a moment
                return {e.id for e in events}

        a, b = await asyncio.gather(claim(db, "a"), claim(other, "b"))
    finally:
        await other.dispose()
    assert a and b and not (a & b)
    assert len(a | b) == 30


async def test_expired_lease_is_redelivered(db: Database, db_env, receiver: Receiver) -> None:
    settings = outbox_settings(db_env, receiver.url)
    clock = FakeClock()
    event_id = await emit_one(db, session_id=uuid.uuid4())
    # worker A claims, then "crashes" before delivering
    async with db.transaction() as tx:
        lost = await repository.claim(tx, worker="crashed", now=clock(), lease_seconds=60, limit=10)
    assert [e.id for e in lost] == [event_id]
    worker = OutboxWorker(settings, db, clock=clock, name="survivor")
    assert (await worker.run_once()).claimed == 0  # the lease still holds
    clock.advance(61)
    assert (await worker.run_once()).delivered == 1
    event = await _event(db, event_id)
    assert (event.status, event.attempts) == ("delivered", 2)
    assert [(a.attempt, a.worker) for a in await _attempts(db, event_id)] == [(2, "survivor")]
    # the crashed worker's late failure report no longer moves the event
    async with db.transaction() as tx:
        owned = await repository.finish(
            tx,
            lost[0],
            worker="crashed",
            now=clock(),
            status="pending",
            next_attempt_at=clock(),
            last_status=500,
            last_error=None,
        )
    assert not owned
    assert (await _event(db, event_id)).status == "delivered"


async def test_secrets_never_reach_logs_or_attempt_rows(
    db: Database, db_env, receiver: Receiver, capsys: pytest.CaptureFixture[str], caplog
) -> None:
    caplog.set_level("DEBUG")
    url_token = "url-token-never-log-51b2"
    settings = outbox_settings(
        db_env,
        receiver.url,
        AI_CS_CHANNEL_WIDGET_CALLBACK_URL=f"http://127.0.0.1:9/hook?token={url_token}",
        AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET="widget-secret-never-log-0c1d",
        AI_CS_CHANNEL_WIDGET_CALLBACK_MAX_RETRIES="1",
    )
    receiver.behaviour = lambda p, nth: 500 if nth == 1 else 200
    platform_event = await emit_one(db, session_id=uuid.uuid4())
    channel_event = await emit_one(db, session_id=uuid.uuid4(), destination="channel:widget")
    await run_until_idle(OutboxWorker(settings, db))

    assert (await _event(db, platform_event)).status == "delivered"
    dead = await _event(db, channel_event)
    assert dead.status == "dead" and dead.last_error == "ConnectError"
    views = [await service.get_event(db, platform_event), await service.get_event(db, channel_event)]
    captured = capsys.readouterr()
    everything = repr(views) + captured.out + captured.err + caplog.text
    assert "outbox event dead-lettered" in everything  # the logs were captured
    for secret in (CALLBACK_SECRET, "widget-secret-never-log-0c1d", url_token):
        assert secret not in everything


async def test_delivered_events_are_purged_after_the_retention_period(db: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import func, update

    from ai_customer_service.db.base import utcnow

    session_id = uuid.uuid4()
    old, recent, pending = [await emit_one(db, session_id=session_id) for _ in range(3)]
    now = utcnow()
    async with db.transaction() as tx:
        for event_id, delivered_at in ((old, now - timedelta(days=20)), (recent, now - timedelta(days=1))):
            await tx.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == event_id)
                .values(status="delivered", delivered_at=delivered_at)
            )
            tx.add(
                OutboxAttempt(
                    event_id=event_id,
                    round=0,
                    attempt=1,
                    worker="w",
                    status_code=200,
                    duration_ms=1.0,
                    outcome="delivered",
                    created_at=delivered_at,
                )
            )
    assert await service.purge_delivered(db, retention_days=14) == 1
    async with db.sessionmaker() as tx:
        left = set((await tx.execute(select(OutboxEvent.id))).scalars())
        attempts = (await tx.execute(select(func.count()).select_from(OutboxAttempt))).scalar_one()
    assert left == {recent, pending}
    assert attempts == 1  # the purged event's attempt went with it


async def test_a_drain_stops_claiming_when_only_failures_come_back(
    db: Database, db_env, receiver: Receiver
) -> None:
    """Retries due within milliseconds are not hammered within one drain: a drain whose latest claims
    only failed stops; the next poll tries again."""
    settings = outbox_settings(db_env, receiver.url, AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES="50")
    receiver.behaviour = lambda p, nth: 500
    await emit_one(db, session_id=uuid.uuid4())
    report = await OutboxWorker(settings, db).drain(max_batches=20)
    assert report.delivered == 0 and 1 <= report.retried <= 2


async def test_a_slow_receiver_answer_holds_back_no_other_session(
    db: Database, db_env, receiver: Receiver
) -> None:
    """While one lane waits on a slow answer, events of other sessions that arrive meanwhile go out."""
    settings = outbox_settings(db_env, receiver.url)  # callback timeout 3 s
    receiver.behaviour = lambda p, nth: "timeout" if p["data"].get("slow") else 200
    receiver.timeout_sleep = 2.0  # answered 200, late but within the timeout
    slow = str(await emit_one(db, session_id=uuid.uuid4(), data={"slow": True}))
    drain = asyncio.create_task(OutboxWorker(settings, db).drain())
    while slow not in receiver.ids():
        await asyncio.sleep(0.01)
    other = str(await emit_one(db, session_id=uuid.uuid4(), data={}))
    while other not in receiver.ids() and not drain.done():
        await asyncio.sleep(0.01)
    # the other session's event went out while the slow one was still waiting for its answer
    assert (await _event(db, uuid.UUID(slow))).status == "pending"
    report = await drain
    assert report.delivered == 2
