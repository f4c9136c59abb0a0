"""Exactly-once processing under concurrency, against real server processes (and two on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ai_customer_service.config import load_settings
from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess, run_cli
from tests.support.webhooks import WEBHOOK, message, signed


@pytest.fixture
def servers(db_env: dict[str, str], backend: str, tmp_path: Path):
    env = {**db_env, "AI_CS_RATE_LIMIT_MESSAGES": "0"}
    count = 2 if backend == "postgres" else 1
    procs = [ServerProcess(env=env, cwd=tmp_path) for _ in range(count)]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


async def _post_all(urls: list[str], bodies: list[tuple[bytes, dict[str, str]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(urls[i % len(urls)] + WEBHOOK, content=raw, headers=h)
                for i, (raw, h) in enumerate(bodies)
            )
        )


async def _count(db_env: dict[str, str], model: Any, *where: Any) -> int:
    db = Database(load_settings(db_env, env_file=None))
    try:
        async with db.sessionmaker() as tx:
            return int((await tx.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
    finally:
        await db.dispose()


async def test_fifty_identical_posts_are_processed_once(
    servers: list[ServerProcess], db_env: dict[str, str]
) -> None:
    one = signed(message("我要退款", open_id="dup-cust", message_id="same-id"), TEST_SECRET)
    responses = await _post_all([s.url for s in servers], [one] * 50)
    assert {r.status_code for r in responses} == {200}
    bodies = [r.json() for r in responses]
    assert sum(not b["duplicate"] for b in bodies) == 1
    assert sum(b["duplicate"] for b in bodies) == 49
    assert len({(b["session_id"], b["reply"], b["ticket_id"], b["message_id"]) for b in bodies}) == 1
    assert await _count(db_env, Message, Message.direction == "inbound") == 1


async def test_fifty_first_messages_from_one_customer_make_one_session(
    servers: list[ServerProcess], db_env: dict[str, str]
) -> None:
    bodies = [
        signed(message(f"hello {i}", open_id="new-cust", message_id=f"m-{i}"), TEST_SECRET) for i in range(50)
    ]
    responses = await _post_all([s.url for s in servers], bodies)
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["session_id"] for r in responses}) == 1
    assert await _count(db_env, Session) == 1
    assert await _count(db_env, Message, Message.direction == "inbound") == 50


def test_a_streamed_body_over_the_limit_is_refused_while_reading(servers: list[ServerProcess]) -> None:
    def chunks():
        chunk = b" " * 65536
        for _ in range(40):  # 2.5 MiB, no Content-Length
            yield chunk

    response = httpx.post(
        servers[0].url + WEBHOOK,
        content=chunks(),
        headers={"Content-Type": "application/json", "X-CS-Timestamp": "1", "X-CS-Signature": "x"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "CS_REQ_4131"
    # the same on a route whose JSON body FastAPI parses itself (it must not turn into a 400)
    parsed = httpx.post(
        servers[0].url + "/api/v1/customer-service/sessions/00000000-0000-0000-0000-000000000000/handoff",
        content=chunks(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        timeout=30,
    )
    assert parsed.status_code == 413 and parsed.json()["error"]["code"] == "CS_REQ_4131"
    declared = httpx.post(servers[0].url + WEBHOOK, content=b" " * (2 * 1024 * 1024), timeout=30)
    assert declared.status_code == 413 and declared.text.startswith('{"error":{"code":"CS_REQ_4131"')
    # refused webhooks are counted like the other rejections (the handoff route's 413 is not)
    metrics = httpx.get(servers[0].url + "/metrics").text
    assert 'cs_webhook_rejections_total{code="CS_REQ_4131"} 2.0' in metrics


def test_doctor_self_test_passes_against_a_running_server(
    servers: list[ServerProcess], db_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("doctor", "--url", servers[0].url, env=db_env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signed self-test webhook: OK" in result.stdout
    assert TEST_SECRET not in result.stdout


def test_the_runbook_signature_snippet_works(servers: list[ServerProcess]) -> None:
    import subprocess
    import time

    ts = str(int(time.time()))
    body = json.dumps(message("hello", message_id="sig-test-001", open_id="sig-test"), separators=(",", ":"))
    sig = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", TEST_SECRET],
        input=f"{ts}.{body}",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    response = httpx.post(
        servers[0].url + WEBHOOK,
        content=body,
        headers={"Content-Type": "application/json", "X-CS-Timestamp": ts, "X-CS-Signature": sig},
    )
    assert response.status_code == 200 and response.json()["received"] is True


def test_injected_fault_in_a_real_server_leaves_nothing_and_the_retry_succeeds(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    server = ServerProcess(env={**db_env, "AI_CS_TEST_FAULTS": "after_ticket_insert:1"}, cwd=tmp_path).start()
    try:
        raw, headers = signed(message("我要退款", open_id="fault-cust", message_id="fault-1"), TEST_SECRET)
        failed = httpx.post(server.url + WEBHOOK, content=raw, headers=headers)
        assert failed.status_code == 500 and failed.json()["error"]["code"] == "CS_SYS_5001"
        assert asyncio.run(_count(db_env, Session)) == 0
        retried = httpx.post(server.url + WEBHOOK, content=raw, headers=headers)
        assert retried.status_code == 200
        assert retried.json()["handoff"] is True and retried.json()["duplicate"] is False
    finally:
        server.stop()
