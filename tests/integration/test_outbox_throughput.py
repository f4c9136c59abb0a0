"""Delivery that keeps up with ingest (issue #12, item 9), asserted by what it does, not how fast:
two workers (separate engines, as two processes would be) drain a burst over many sessions with
every event delivered exactly once and each session's order kept, over a handful of kept-alive
connections, with far fewer database statements than events. The time it takes is measured by
``bench/outbox_burst.py``."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from ai_customer_service.db.engine import Database
from ai_customer_service.outbox.events import EventType, emit
from ai_customer_service.outbox.models import OutboxEvent
from ai_customer_service.outbox.worker import OutboxWorker
from tests.support.outbox import CALLBACK_SECRET, outbox_settings, run_until_idle
from tests.support.receiver import Receiver

SESSIONS = 40
PER_SESSION = 15


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=CALLBACK_SECRET) as r:
        yield r


class StatementCounter:
    def __init__(self, *dbs: Database) -> None:
        self.count = 0
        for db in dbs:
            event.listen(db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.count += 1


async def test_a_burst_is_delivered_once_in_order_over_reused_connections(
    db: Database, db_env: dict[str, str], receiver: Receiver
) -> None:
    settings = outbox_settings(db_env, receiver.url, AI_CS_OUTBOX_CONCURRENCY="8")
    sessions = [uuid.uuid4() for _ in range(SESSIONS)]
    emitted: dict[str, list[str]] = defaultdict(list)
    async with db.transaction() as tx:
        for n in range(PER_SESSION):
            for sid in sessions:
                event_id = emit(
                    tx, destination="sub2api", type=EventType.MESSAGE_RECEIVED, session_id=sid, data={"n": n}
                )
                emitted[str(sid)].append(str(event_id))
    total = SESSIONS * PER_SESSION

    second_db = Database(settings)  # its own engine and pool: a second process, as far as the DB knows
    statements = StatementCounter(db, second_db)
    try:
        w1, w2 = OutboxWorker(settings, db, name="w1"), OutboxWorker(settings, second_db, name="w2")
        await run_until_idle(w1, w2)
    finally:
        await second_db.dispose()

    assert receiver.bad_signatures == 0
    ids = receiver.ids()
    assert len(ids) == total and len(set(ids)) == total  # every event, exactly once
    by_session: dict[str, list[str]] = defaultdict(list)
    for got in receiver.received:
        by_session[got.payload["session_id"]].append(got.payload["id"])
    assert by_session == emitted  # each session's events in the order they were written
    async with db.transaction() as tx:
        rows = (await tx.execute(select(OutboxEvent.status, OutboxEvent.attempts))).all()
    assert {tuple(r) for r in rows} == {("delivered", 1)}
    # one keep-alive client per worker: connections are reused, not opened per event or per batch
    assert receiver.connections() <= 2 * 8
    # claims and outcomes are written for many events at once, not in transactions per event
    assert statements.count < total / 2, statements.count


async def test_one_drain_keeps_every_lane_busy_and_each_sessions_order(
    db: Database, db_env: dict[str, str], receiver: Receiver
) -> None:
    """Small batches: the drain claims the next batch while its lanes still post the last one, and a
    session's later events (due once the earlier ones are recorded) follow within the same drain."""
    settings = outbox_settings(
        db_env,
        receiver.url,
        AI_CS_OUTBOX_BATCH_SIZE="4",
        AI_CS_OUTBOX_CONCURRENCY="3",
        AI_CS_OUTBOX_SESSION_BATCH="2",
    )
    sessions = [uuid.uuid4() for _ in range(12)]
    emitted: dict[str, list[str]] = defaultdict(list)
    async with db.transaction() as tx:
        for n in range(5):
            for sid in sessions:
                event_id = emit(
                    tx, destination="sub2api", type=EventType.MESSAGE_RECEIVED, session_id=sid, data={"n": n}
                )
                emitted[str(sid)].append(str(event_id))
    report = await OutboxWorker(settings, db).drain(max_batches=1000)
    assert (report.delivered, report.retried, report.dead) == (60, 0, 0)
    by_session: dict[str, list[str]] = defaultdict(list)
    for got in receiver.received:
        by_session[got.payload["session_id"]].append(got.payload["id"])
    assert by_session == emitted
    assert receiver.connections() <= 3  # one kept-alive connection per lane
