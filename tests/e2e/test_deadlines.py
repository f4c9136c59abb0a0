"""Deadlines on the database and on requests (issue #12, item 7): a stalled or locked database is
answered 503 ``CS_SYS_5031`` with ``Retry-After`` within the configured deadline, never hangs, and
leaves nothing half-written; the same message retried afterwards is processed once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from ai_customer_service.config import load_settings
from ai_customer_service.conversation.models import Message, MessageDedup
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.main import create_app
from ai_customer_service.uow import UnitOfWork
from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhooks import WEBHOOK, message, signed

STALL_SECONDS = 45.0  # the proxy resumes by itself after this, as the chaos test's stall did


async def _stored(db: Database, message_id: str) -> tuple[int, int]:
    async with db.transaction() as tx:
        messages = await tx.execute(
            select(func.count()).select_from(Message).where(Message.channel_message_id == message_id)
        )
        dedup = await tx.execute(
            select(func.count()).select_from(MessageDedup).where(MessageDedup.message_id == message_id)
        )
        return int(messages.scalar_one()), int(dedup.scalar_one())


@pytest.mark.usefixtures("postgres_only")
def test_a_stalled_database_is_answered_503_within_the_deadline(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    dsn = urlsplit(db_env["AI_CS_POSTGRES_DSN"])
    proxy = TcpProxy(dsn.hostname or "127.0.0.1", dsn.port or 5432).start()
    netloc = dsn.netloc.replace(f"{dsn.hostname}:{dsn.port}", f"127.0.0.1:{proxy.port}")
    env = {
        **db_env,
        "AI_CS_POSTGRES_DSN": urlunsplit(dsn._replace(netloc=netloc)),
        "AI_CS_REQUEST_TIMEOUT_SECONDS": "2",
        "AI_CS_DB_STATEMENT_TIMEOUT_MS": "1000",
        "AI_CS_DB_POOL_TIMEOUT_SECONDS": "1",
        # a stalled server also accepts new connections without answering: opening one never fails
        # fast either (only the deadlines end the wait)
        "AI_CS_DB_CONNECT_TIMEOUT_SECONDS": "60",
    }
    server = ServerProcess(env=env, cwd=tmp_path).start()
    resume = threading.Timer(STALL_SECONDS, proxy.resume)
    try:
        raw, headers = signed(message("hello", message_id="before-stall", open_id="c-1"), TEST_SECRET)
        assert (
            httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=30).status_code == 200
        )

        proxy.pause()
        resume.start()
        stalled_at = time.monotonic()
        body = message("I want a refund", message_id="during-stall", open_id="c-2")
        raw, headers = signed(body, TEST_SECRET)
        answers = []
        for _ in range(3):  # the first holds a pooled connection; the later ones too, or wait for one
            answers.append(httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=60))
        returned_after = time.monotonic() - stalled_at
        assert resume.is_alive(), "the stall ended before the answers came"
        assert returned_after < STALL_SECONDS
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "CS_SYS_5031"
            assert answer.headers["retry-after"] == "2"
        assert httpx.get(f"{server.url}/actuator/health/live", timeout=5).status_code == 200
    finally:
        resume.cancel()
        proxy.resume()

    try:
        # nothing of the stalled request was written; its retry is processed, once
        counts = asyncio.run(_count_direct(db_env["AI_CS_POSTGRES_DSN"], "during-stall"))
        assert counts == (0, 0)
        deadline = time.monotonic() + 20
        while True:
            retry = httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=30)
            if retry.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # dropped connections are replaced on the next checkout
        assert retry.status_code == 200, retry.text
        again = httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=30)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert asyncio.run(_count_direct(db_env["AI_CS_POSTGRES_DSN"], "during-stall")) == (1, 1)
        assert "request deadline exceeded" in server.logs()
    finally:
        server.stop()
        proxy.stop()


async def _count_direct(dsn: str, message_id: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn.split("?", 1)[0])
    try:
        messages = await conn.fetchval(
            "SELECT count(*) FROM cs_messages WHERE channel_message_id = $1", message_id
        )
        dedup = await conn.fetchval("SELECT count(*) FROM cs_message_dedup WHERE message_id = $1", message_id)
        return int(messages), int(dedup)
    finally:
        await conn.close()


@pytest.fixture
async def locked_db(
    db_env: dict[str, str], backend: str
) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    settings = load_settings(
        {**db_env, "AI_CS_DB_STATEMENT_TIMEOUT_MS": "500", "AI_CS_REQUEST_TIMEOUT_SECONDS": "5"},
        env_file=None,
    )
    db = Database(settings)
    await upgrade(db.engine)
    app = create_app(settings, db=db)
    # no lifespan: the background jobs would fail too while the lock is held, and the test log's
    # pretty tracebacks of those failures take the event loop for seconds
    await app.state.ctx.knowledge.refresh()  # the bot starts from a built (empty) index
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield db, client
    finally:
        await db.dispose()


LOCK_SECONDS = 10.0  # the other client gives the lock up after this (the old busy timeout was 30 s)


class _LockHolder:
    """Another client holds the lock the webhook's transaction needs, for :data:`LOCK_SECONDS`."""

    def __init__(self, db_env: dict[str, str], backend: str) -> None:
        self.db_env, self.backend = db_env, backend
        self.held = False
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    async def _until_given_up(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout=LOCK_SECONDS)
        self.held = False

    async def __aenter__(self) -> _LockHolder:
        taken = asyncio.Event()
        self._task = asyncio.create_task(self._hold(taken))
        await taken.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._done.set()
        await self._task

    async def _hold(self, taken: asyncio.Event) -> None:
        if self.backend == "postgres":
            conn = await asyncpg.connect(self.db_env["AI_CS_POSTGRES_DSN"].split("?", 1)[0])
            tx = conn.transaction()
            await tx.start()
            await conn.execute("LOCK TABLE cs_message_dedup IN ACCESS EXCLUSIVE MODE")
            self.held = True
            taken.set()
            await self._until_given_up()
            await tx.rollback()
            await conn.close()
        else:
            path = Path(self.db_env["AI_CS_DATA_DIR"]) / "ai_customer_service.db"
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            self.held = True
            taken.set()
            await self._until_given_up()
            conn.execute("ROLLBACK")
            conn.close()


async def test_a_held_lock_is_answered_503_not_waited_out(
    locked_db: tuple[Database, httpx.AsyncClient], db_env: dict[str, str], backend: str
) -> None:
    db, client = locked_db
    raw, headers = signed(message("hello", message_id="while-locked", open_id="c-9"), TEST_SECRET)
    async with _LockHolder(db_env, backend) as lock:
        answer = await client.post(WEBHOOK, content=raw, headers=headers, timeout=60)
        # answered while the lock was still held: the statement/lock timeout ended it, not the lock
        assert lock.held
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "CS_SYS_5031"
        assert answer.headers["retry-after"] == "2"
    assert await _stored(db, "while-locked") == (0, 0)
    retry = await client.post(WEBHOOK, content=raw, headers=headers)
    assert retry.status_code == 200, retry.text
    assert await _stored(db, "while-locked") == (1, 1)


async def test_the_request_deadline_cuts_a_slow_handler(db_env: dict[str, str]) -> None:
    """Whatever makes a request slow, past AI_CS_REQUEST_TIMEOUT_SECONDS it is a 503, rolled back."""
    settings = load_settings({**db_env, "AI_CS_REQUEST_TIMEOUT_SECONDS": "0.5"}, env_file=None)
    db = Database(settings)
    await upgrade(db.engine)
    app = create_app(settings, db=db)
    ingest = app.state.ctx.ingest
    original = ingest._process

    async def slow_process(uow: UnitOfWork, *args: object, **kwargs: object) -> object:
        result = await original(uow, *args, **kwargs)
        await uow.tx.flush()  # the rows are written, not yet committed
        await asyncio.sleep(30)  # e.g. a statement that hangs on a stalled database
        return result

    ingest._process = slow_process
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                raw, headers = signed(message("hello", message_id="slow-1", open_id="c-5"), TEST_SECRET)
                started = time.monotonic()
                answer = await client.post(WEBHOOK, content=raw, headers=headers, timeout=60)
                assert time.monotonic() - started < 30  # not waited out
                assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
                assert answer.json()["error"]["code"] == "CS_SYS_5031"
                assert answer.json()["error"]["request_id"]
        assert await _stored(db, "slow-1") == (0, 0)
    finally:
        await db.dispose()
