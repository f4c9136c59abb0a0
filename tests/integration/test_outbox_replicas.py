"""A replica started without a destination's configuration must leave that destination's events alone
(issue #12, item 8): it never claims, fails or dead-letters them, says so once in its log, in a
metric, in ``/actuator/health`` and in ``doctor``; the replica that knows the destination delivers
every one of them, in order."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from ai_customer_service.config import Settings, load_settings
from ai_customer_service.db.engine import Database
from ai_customer_service.doctor import run_doctor
from ai_customer_service.metrics import Metrics
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent
from ai_customer_service.outbox.worker import OutboxWorker
from tests.support.outbox import CALLBACK_SECRET, emit_one, outbox_settings, run_until_idle
from tests.support.receiver import Receiver

WIDGET_SECRET = "widget-callback-secret-3c9e"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=CALLBACK_SECRET) as r:
        yield r


@pytest.fixture
def widget_receiver() -> Iterator[Receiver]:
    with Receiver(secret=WIDGET_SECRET) as r:
        yield r


def _without_platform(db_env: dict[str, str], widget_url: str) -> Settings:
    """The stray replica: same database, a channel subscription, but no sub2api configuration."""
    return load_settings(
        {
            **db_env,
            "AI_CS_OUTBOX_WORKER_ENABLED": "false",
            "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": widget_url,
            "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": WIDGET_SECRET,
            "AI_CS_CHANNEL_WIDGET_CALLBACK_MAX_RETRIES": "0",
        },
        env_file=None,
    )


async def _rows(db: Database) -> dict[str, OutboxEvent]:
    async with db.transaction() as tx:
        rows = (await tx.execute(select(OutboxEvent))).scalars().all()
    return {str(r.id): r for r in rows}


async def test_a_replica_without_the_platform_leaves_its_events_to_the_one_with_it(
    db: Database,
    db_env: dict[str, str],
    receiver: Receiver,
    widget_receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    sessions = [uuid.uuid4() for _ in range(5)]
    emitted: dict[str, list[str]] = defaultdict(list)
    for n in range(30):
        sid = sessions[n % 5]
        emitted[str(sid)].append(str(await emit_one(db, session_id=sid, data={"n": n})))
    widget_event = str(await emit_one(db, session_id=uuid.uuid4(), destination="channel:widget"))

    stray = OutboxWorker(_without_platform(db_env, widget_receiver.url), db, Metrics(), name="stray")
    for _ in range(3):
        await stray.drain()
    rows = await _rows(db)
    # its own destination is served...
    assert rows[widget_event].status == "delivered"
    assert [r.payload["id"] for r in widget_receiver.received] == [widget_event]
    # ...the other one's events are untouched: not claimed, not attempted, not failed, not dead
    for ids in emitted.values():
        for event_id in ids:
            row = rows[event_id]
            assert (row.status, row.attempts, row.claimed_by, row.last_error) == ("pending", 0, None, None)
    async with db.transaction() as tx:
        attempts = (await tx.execute(select(func.count()).select_from(OutboxAttempt))).scalar_one()
    assert attempts == 1  # the widget event's
    assert receiver.received == []

    # it says so: a gauge per destination, one log line per destination per interval (not per event)
    assert await stray.check_destinations() == {"sub2api": 30}
    assert await stray.check_destinations() == {"sub2api": 30}
    assert stray.metrics is not None
    exposition = stray.metrics.exposition().decode()
    assert 'cs_outbox_unknown_destination_events{destination="sub2api"} 30.0' in exposition
    logged = capsys.readouterr().out + caplog.text
    assert logged.count("for a destination this process does not deliver to") == 1

    # the replica that has the platform configured delivers all of them, in order, exactly once
    right = OutboxWorker(outbox_settings(db_env, receiver.url), db, name="right")
    await run_until_idle(right)
    assert receiver.bad_signatures == 0
    got: dict[str, list[str]] = defaultdict(list)
    for r in receiver.received:
        got[r.payload["session_id"]].append(r.payload["id"])
    assert got == emitted
    assert {r.status for r in (await _rows(db)).values()} == {"delivered"}
    assert await stray.check_destinations() == {}
    exposition = stray.metrics.exposition().decode()
    assert 'cs_outbox_unknown_destination_events{destination="sub2api"} 0.0' in exposition


async def test_health_shows_the_mismatch_without_failing_readiness(
    db: Database, client: httpx.AsyncClient
) -> None:
    # the app fixture's settings know no destination at all
    await emit_one(db, session_id=uuid.uuid4())
    await emit_one(db, session_id=uuid.uuid4())
    health = await client.get("/actuator/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "UP"
    outbox = body["components"]["outbox"]
    assert outbox["status"] == "DEGRADED"
    assert outbox["unknown_destinations"] == {"sub2api": 2}
    assert (await client.get("/actuator/health/ready")).status_code == 200


async def test_health_outbox_is_up_when_every_pending_event_is_known(
    db: Database, client: httpx.AsyncClient
) -> None:
    body = (await client.get("/actuator/health")).json()
    assert body["components"]["outbox"] == {"status": "UP", "destinations": []}


async def test_doctor_warns_about_events_for_an_unknown_destination(db: Database, settings: Settings) -> None:
    for _ in range(3):
        await emit_one(db, session_id=uuid.uuid4())
    lines: list[str] = []
    # doctor runs its own event loop: give it a thread (the HTTP checks fail, nothing listens there)
    await asyncio.to_thread(run_doctor, settings, url="http://127.0.0.1:9", log_file=None, out=lines.append)
    warnings = [line for line in lines if "WARNING outbox" in line]
    assert len(warnings) == 1 and "'sub2api'" in warnings[0] and "3 pending" in warnings[0]
