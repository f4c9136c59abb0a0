"""Admin API, CLI and in-server worker for outbound callbacks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.main import create_app
from ai_customer_service.outbox.events import EventType
from ai_customer_service.outbox.worker import OutboxWorker
from tests.support.outbox import CALLBACK_SECRET, emit_one, outbox_settings, platform_env, run_until_idle
from tests.support.receiver import Receiver
from tests.support.server import run_cli

ADMIN = "admin-token-for-tests"
PREFIX = "/api/v1/customer-service/outbox"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=CALLBACK_SECRET) as r:
        yield r


@pytest.fixture
def admin_settings(db_env: dict[str, str], receiver: Receiver) -> Settings:
    return outbox_settings(
        db_env, receiver.url, AI_CS_ADMIN_TOKEN=ADMIN, AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES="0"
    )


@pytest.fixture
async def api(admin_settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(admin_settings, db=db)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_admin_token_is_required(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN}"}):
        response = await api.get(f"{PREFIX}/events", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "CS_AUTH_4011"


async def test_list_inspect_and_replay_dead_letters(
    api: httpx.AsyncClient, admin_settings: Settings, db: Database, receiver: Receiver
) -> None:
    sid = uuid.uuid4()
    receiver.behaviour = lambda p, nth: 500
    dead_ids = [str(await emit_one(db, session_id=sid, type=EventType.TICKET_CREATED)) for _ in range(2)]
    other = str(await emit_one(db, session_id=uuid.uuid4(), type=EventType.AGENT_REPLIED))
    await run_until_idle(OutboxWorker(admin_settings, db))

    listed = (await api.get(f"{PREFIX}/events", params={"status": "dead"}, headers=AUTH)).json()
    assert listed["total"] == 3 and listed["page"] == 1
    by_session = (await api.get(f"{PREFIX}/events", params={"session_id": str(sid)}, headers=AUTH)).json()
    assert sorted(i["id"] for i in by_session["items"]) == sorted(dead_ids)
    by_type = (await api.get(f"{PREFIX}/events", params={"type": "agent.replied"}, headers=AUTH)).json()
    assert [i["id"] for i in by_type["items"]] == [other]
    paged = (await api.get(f"{PREFIX}/events", params={"page_size": 2, "page": 2}, headers=AUTH)).json()
    assert len(paged["items"]) == 1 and paged["total"] == 3
    bad = await api.get(f"{PREFIX}/events", params={"status": "nope"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "CS_REQ_4001"

    one = (await api.get(f"{PREFIX}/events/{other}", headers=AUTH)).json()
    assert one["status"] == "dead" and one["attempts"] == 1
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in one["attempt_log"]] == [(1, 500, "dead")]
    missing = await api.get(f"{PREFIX}/events/{uuid.uuid4()}", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CS_OUTBOX_4041"

    receiver.behaviour = lambda p, nth: 200
    replayed = await api.post(f"{PREFIX}/events/{other}/replay", headers=AUTH)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    again = await api.post(f"{PREFIX}/events/{other}/replay", headers=AUTH)
    assert again.status_code == 409 and again.json()["error"]["code"] == "CS_OUTBOX_4091"

    bulk = await api.post(f"{PREFIX}/replay", json={"session_id": str(sid)}, headers=AUTH)
    assert bulk.json() == {"replayed": 2}
    assert (await api.post(f"{PREFIX}/replay", json={"bogus": 1}, headers=AUTH)).status_code == 400
    await run_until_idle(OutboxWorker(admin_settings, db))
    delivered = (await api.get(f"{PREFIX}/events", params={"status": "delivered"}, headers=AUTH)).json()
    assert delivered["total"] == 3


async def test_the_server_runs_the_worker_and_reports_metrics(
    db_env: dict[str, str], db: Database, receiver: Receiver
) -> None:
    settings = outbox_settings(
        db_env, receiver.url, AI_CS_OUTBOX_WORKER_ENABLED="true", AI_CS_OUTBOX_POLL_INTERVAL_SECONDS="0.05"
    )
    application: FastAPI = create_app(settings, db=db)
    async with application.router.lifespan_context(application):
        event_id = await emit_one(db, session_id=uuid.uuid4())
        for _ in range(600):  # generous: the machine may be busy; the loop exits on delivery
            if receiver.acknowledged():
                break
            await asyncio.sleep(0.05)
        assert receiver.ids() == [str(event_id)]
        ctx = application.state.ctx
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(100):  # the receiver has it; wait until the worker has recorded it
                text = (await client.get("/metrics")).text
                if 'cs_outbox_deliveries_total{outcome="delivered"} 1.0' in text:
                    break
                await asyncio.sleep(0.05)
            await OutboxWorker(settings, db, ctx.metrics).refresh_metrics()
            text = (await client.get("/metrics")).text
    assert 'cs_outbox_deliveries_total{outcome="delivered"} 1.0' in text
    assert "cs_outbox_pending_events 0.0" in text
    assert "cs_outbox_oldest_pending_age_seconds" in text


async def test_cli_worker_list_and_replay(
    db_env: dict[str, str], db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    env = {**db_env, **platform_env(receiver.url), "AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES": "0"}
    receiver.behaviour = lambda p, nth: 500 if nth == 1 else 200
    event_id = str(await emit_one(db, session_id=uuid.uuid4()))

    worker = await asyncio.to_thread(run_cli, "outbox", "worker", "--once", env=env, cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert CALLBACK_SECRET not in worker.stdout + worker.stderr
    listed = await asyncio.to_thread(run_cli, "outbox", "list", "--status", "dead", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [i["id"] for i in json.loads(listed.stdout)["items"]] == [event_id]

    usage = await asyncio.to_thread(run_cli, "outbox", "replay", env=env, cwd=tmp_path)
    assert usage.returncode == 1 and "EVENT_ID" in usage.stderr
    replay = await asyncio.to_thread(run_cli, "outbox", "replay", "--all-dead", env=env, cwd=tmp_path)
    assert json.loads(replay.stdout) == {"replayed": 1}
    worker = await asyncio.to_thread(run_cli, "outbox", "worker", "--once", env=env, cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert len(receiver.acknowledged()) == 1
