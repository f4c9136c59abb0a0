"""Issue #15's acceptance: the real server started on a database of the original Go service, with the
runbook's key=value DSN, in trusted-header mode; then the original runbook's checks against it.

PostgreSQL only (the original ran on PostgreSQL); skipped on SQLite runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from ai_customer_service.db.adopt import DUPLICATE_REPLY
from tests.conftest import TEST_SECRET
from tests.support import databases, original_db
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, run_cli
from tests.support.webhooks import WEBHOOK, message, signed

API = "/api/v1/customer-service"
PLATFORM_SECRET = "platform-ingress-secret"
CALLBACK_SECRET = "platform-callback-secret"
SUPERVISOR = {"X-CS-Actor-ID": "zhang.wei", "X-CS-Actor-Role": "supervisor"}
LI_LEI = {"X-CS-Actor-ID": "li.lei", "X-CS-Actor-Role": "agent"}

pytestmark = pytest.mark.usefixtures("postgres_only")


def _keyvalue_dsn(name: str) -> str:
    """The runbook's form of the DSN, for the test database."""
    plain = databases.dsn_for(name).split("?")[0]  # postgres://user@host:port/db
    rest = plain.split("://", 1)[1]
    user, _, hostpart = rest.rpartition("@")
    hostport, _, db = hostpart.partition("/")
    host, _, port = hostport.partition(":")
    return f"host={host} port={port or 5432} user={user or 'postgres'} dbname={db} sslmode=disable"


@pytest.fixture
def original(tmp_path: Path) -> Iterator[tuple[str, str, original_db.Seeded]]:
    name = asyncio.run(databases.create_database("aics_go"))
    dsn = databases.dsn_for(name).split("?")[0]
    try:
        asyncio.run(original_db.create_original_schema(dsn))
        seeded = asyncio.run(original_db.seed(dsn))
        yield name, dsn, seeded
    finally:
        asyncio.run(databases.drop_database(name))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver(CALLBACK_SECRET).start()
    try:
        yield rx
    finally:
        rx.stop()


def _env(name: str, receiver: Receiver, tmp_path: Path) -> dict[str, str]:
    return {
        "AI_CS_RUNTIME_ENV": "test",
        "AI_CS_DATA_DIR": str(tmp_path / "var"),
        "AI_CS_LOG_LEVEL": "info",
        "AI_CS_EMBEDDING_MODEL": "hashing",
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": _keyvalue_dsn(name),
        "AI_CS_POSTGRES_MIGRATION_DIR": "db/migration",  # the original's variable, accepted
        "AI_CS_WEBHOOK_SECRET": TEST_SECRET,
        "AI_CS_AUTH_TRUSTED_HEADERS": "true",
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": PLATFORM_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": receiver.url,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": CALLBACK_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_TIMEOUT_MS": "2000",
        "AI_CS_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }


async def _versions(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["version"] for r in await conn.fetch("SELECT version FROM cs_schema_migrations")]
    finally:
        await conn.close()


def _webhook(server: ServerProcess, body: dict) -> httpx.Response:
    raw, headers = signed(body, TEST_SECRET)
    return httpx.post(server.url + WEBHOOK, content=raw, headers=headers, timeout=20)


@pytest.mark.parametrize("dry_run_first", [False, True], ids=["start", "dry-run-then-start"])
def test_the_server_adopts_the_originals_database(
    original: tuple[str, str, original_db.Seeded],
    receiver: Receiver,
    tmp_path: Path,
    dry_run_first: bool,
) -> None:
    name, dsn, ids = original
    env = _env(name, receiver, tmp_path)
    if dry_run_first:
        before = asyncio.run(original_db.snapshot(dsn))
        result = run_cli("migrate", "--dry-run", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "nothing was changed" in result.stdout
        assert "cs_tickets <- 1 tickets" in result.stdout and "li.lei" in result.stdout
        assert "cs_platform_outbox <- 4 events" in result.stdout
        assert asyncio.run(original_db.snapshot(dsn)) == before

    server = ServerProcess(env=env, cwd=tmp_path)
    try:
        server.start(timeout=60)
        logs = server.logs()
        assert logs.count("AI_CS_POSTGRES_MIGRATION_DIR is not used") == 1
        assert "original database adopted" in logs
        with httpx.Client(base_url=server.url + API, timeout=20) as api:
            # the old ticket and its conversation, read by li.lei through the gateway's headers
            ticket = api.get(f"/tickets/{ids.ticket_id}", headers=LI_LEI)
            assert ticket.status_code == 200, ticket.text
            body = ticket.json()
            assert (body["status"], body["priority"], body["reason"]) == ("assigned", "P1", "refund")
            assert [m["content"] for m in body["messages"]][-1] == ids.reply
            messages = api.get(f"/sessions/{ids.session_id}/messages", headers=SUPERVISOR).json()["items"]
            assert len(messages) == 4
            mine = api.get("/tickets", params={"assignee": "li.lei"}, headers=SUPERVISOR).json()
            assert [t["id"] for t in mine["items"]] == [str(ids.ticket_id)]

        # the message the original processed is a duplicate, answered with its original reply
        again = _webhook(
            server, message("我要退款", open_id=ids.open_id, message_id=ids.processed_message_id)
        )
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True and again.json()["reply"] == ids.reply
        bare = _webhook(server, message("怎么改密码", open_id=ids.open_id, message_id=ids.bare_message_id))
        assert bare.json()["duplicate"] is True and bare.json()["reply"] == DUPLICATE_REPLY

        # the original's waiting outbox events reach the platform, in their order
        deadline = time.monotonic() + 30
        waiting = [str(e) for e in ids.pending_event_ids]
        while time.monotonic() < deadline and not set(waiting) <= set(receiver.ids()):
            time.sleep(0.2)
        delivered = [i for i in receiver.ids() if i in waiting]
        assert delivered == waiting, server.logs()
        first = next(r.payload for r in receiver.acknowledged() if r.payload["id"] == waiting[0])
        assert first["platform"] == "sub2api" and first["data"]["note"] == "from the original"
        assert str(ids.dead_event_id) not in receiver.ids()  # dead letters wait for a replay

        # new messages work, on the customer's current session (handed off: the bot stays silent)
        new = _webhook(server, message("在吗？", open_id=ids.open_id, message_id="after-adoption-1"))
        assert new.status_code == 200 and new.json()["duplicate"] is False
        assert new.json()["session_id"] == str(ids.session_id)
        assert new.json()["ticket_id"] == str(ids.ticket_id)
        fresh = _webhook(server, message("hello", open_id="new-customer", message_id="after-adoption-2"))
        assert fresh.status_code == 200 and fresh.json()["reply"]
    finally:
        assert server.stop() == 0
    versions = asyncio.run(_versions(dsn))
    assert "0001_init" in versions and "0002_platform_outbox" in versions
    assert any(v.startswith("ai_cs_0013") for v in versions)


def test_the_original_runbooks_checks_pass_in_trusted_header_mode(
    original: tuple[str, str, original_db.Seeded], receiver: Receiver, tmp_path: Path
) -> None:
    """docs/RUNBOOK.md of the original, step by step (see docs/migrating-from-go.md for the list)."""
    name, dsn, ids = original
    server = ServerProcess(env=_env(name, receiver, tmp_path), cwd=tmp_path)
    try:
        server.start(timeout=60)
        # pre-flight 3: the migration check reads the public tables
        tables = asyncio.run(_public_tables(dsn))
        assert "cs_sessions" in tables and "cs_schema_migrations" in tables
        assert "0001_init" in asyncio.run(_versions(dsn))
        # pre-flight 5 and diagnostic 2: the probes
        ready = httpx.get(server.url + "/actuator/health/ready")
        assert ready.status_code == 200 and '"status":"UP"' in ready.text and '"postgres"' in ready.text
        for path in ("/actuator/health/live", "/actuator/health/ready", "/actuator/health"):
            assert httpx.get(server.url + path).status_code == 200, path
        # section 5: the signature failures, with the original's codes
        raw = json.dumps({"test": "payload"}).encode()
        codes = {
            "missing": httpx.post(server.url + WEBHOOK, content=raw),
            "stale": httpx.post(server.url + WEBHOOK, content=raw, headers=signed(raw, TEST_SECRET, ts=1)[1]),
            "mismatch": httpx.post(server.url + WEBHOOK, content=raw, headers=signed(raw, "wrong-secret")[1]),
        }
        assert {k: r.json()["error"]["code"] for k, r in codes.items()} == {
            "missing": "CS_AUTH_4031",
            "stale": "CS_AUTH_4033",
            "mismatch": "CS_AUTH_4034",
        }
        # section 5's own test body is not a message (400 rather than processed; on purpose)
        assert (
            httpx.post(server.url + WEBHOOK, content=raw, headers=signed(raw, TEST_SECRET)[1]).status_code
            == 400
        )
        # diagnostic 5: the diagnostic webhook
        diag = _webhook(
            server,
            {
                "channel": "widget",
                "message_id": "diag-001",
                "open_id": "diag-open",
                "content": "health check",
                "timestamp": "2026-05-04T00:00:00Z",
            },
        )
        assert diag.status_code == 200 and diag.json()["received"] is True
        # the chain webhook -> assign -> resolve -> close with the gateway's headers and query params
        with httpx.Client(base_url=server.url + API, timeout=20) as api:
            handed = _webhook(
                server, message("我要投诉，转人工", open_id="chain-cust", message_id="chain-1")
            ).json()
            ticket = handed["ticket_id"]
            assert (
                api.post(f"/tickets/{ticket}/assign?agent_id=li.lei", headers=SUPERVISOR).status_code == 200
            )
            assert api.post(f"/tickets/{ticket}/resolve?resolution=done", headers=LI_LEI).status_code == 200
            assert api.post(f"/tickets/{ticket}/close", headers=SUPERVISOR).status_code == 200
            rows = api.get(
                "/audit",
                params={"object_type": "ticket", "object_id": ticket, "order": "asc"},
                headers=SUPERVISOR,
            ).json()["items"]
            assert [r["action"] for r in rows] == ["assign", "resolve", "close"]  # one row each (was two)
            # the original resolved as any header actor; here only the assignee (or staff) may
            other = {"X-CS-Actor-ID": "han.meimei", "X-CS-Actor-Role": "agent"}
            old = str(ids.ticket_id)
            assert api.post(f"/tickets/{old}/resolve?resolution=x", headers=other).status_code == 403
        # diagnostic 3: the ticket count query
        assert asyncio.run(_ticket_count(dsn)) == 2
    finally:
        assert server.stop() == 0


async def _public_tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public' ORDER BY table_name"
        )
        return {r["table_name"] for r in rows}
    finally:
        await conn.close()


async def _ticket_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) as tickets FROM cs_tickets"))
    finally:
        await conn.close()
