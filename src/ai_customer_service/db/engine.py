"""The async engine for either store, and the unit of work the services use.

SQLite (embedded default): one file under ``AI_CS_DATA_DIR``, WAL, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so concurrent writers queue on the database lock instead
of failing on a read-to-write upgrade. PostgreSQL: asyncpg with a bounded pool sized from the
``AI_CS_POSTGRES_*`` settings.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from ai_customer_service.config import Settings, postgres_url

READ_ONLY = "ai_cs_read_only"
# execution option: the connection runs single statements outside a transaction (``db.driver``)
SINGLE_STATEMENT = "ai_cs_single_statement"
IDLE_GRACE_SECONDS = 30.0


class IdleCappedPool(AsyncAdaptedQueuePool):
    """A pool of up to ``AI_CS_POSTGRES_MAX_OPEN_CONNS`` connections that keeps at most ``max_idle``
    idle ones, but only closes the surplus once demand has stayed at or below ``max_idle`` for
    :data:`IDLE_GRACE_SECONDS`.

    SQLAlchemy's own overflow (``pool_size`` = max idle, the rest as overflow) closes a surplus
    connection the moment it is returned. Under load, returns come in bursts before the waiting
    checkouts run, so it closed connections that were needed a millisecond later and opened new
    ones: hundreds of PostgreSQL backends forked per minute (each re-preparing every statement)
    at a steady 64 requests in flight.
    """

    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"  # log as SQLAlchemy's pool
    max_idle = 0  # set per engine (see create_engine)
    _busy_at = 0.0  # when more than max_idle connections were last in use

    def _do_get(self) -> ConnectionPoolEntry:
        record = super()._do_get()
        if self.checkedout() > self.max_idle:
            self._busy_at = time.monotonic()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        now = time.monotonic()
        if self.checkedout() > self.max_idle:
            # still busy (e.g. every connection was held through a long stall): a burst of returns
            # must not close connections that waiting checkouts need
            self._busy_at = now
        if self.checkedin() >= self.max_idle and now - self._busy_at > IDLE_GRACE_SECONDS:
            try:
                record.close()
            finally:
                self._dec_overflow()
            return
        super()._do_return_conn(record)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.postgres_enabled:
        url, connect_args = postgres_url(settings.postgres_dsn)
        # the DSN's connect_timeout and application_name win over our defaults
        connect_args.setdefault("timeout", settings.db_connect_timeout_seconds)
        server_settings = connect_args.setdefault("server_settings", {})
        server_settings.setdefault("application_name", "ai-customer-service")
        _postgres_deadlines(settings, server_settings)
        pool = type("PostgresPool", (IdleCappedPool,), {"max_idle": max(1, settings.postgres_max_idle_conns)})
        return create_async_engine(
            url,
            connect_args=connect_args,
            poolclass=pool,
            pool_size=settings.postgres_max_open_conns,
            max_overflow=0,
            pool_recycle=settings.postgres_conn_max_lifetime_sec,
            # no pre-ping: a dead connection is invalidated on first use; saves a round trip per checkout
            pool_pre_ping=False,
            pool_timeout=settings.db_pool_timeout_seconds,
            hide_parameters=True,  # errors are logged: keep customer text and PII out of them
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    busy_ms = settings.db_statement_timeout_ms or SQLITE_NO_DEADLINE_BUSY_MS
    engine = create_async_engine(
        settings.database_url,
        connect_args={"timeout": busy_ms / 1000},
        pool_size=5,
        max_overflow=5,
        pool_timeout=settings.db_pool_timeout_seconds,
        hide_parameters=True,
    )
    _sqlite_events(engine, busy_ms)
    return engine


# with AI_CS_DB_STATEMENT_TIMEOUT_MS=0, SQLite still gives up waiting for the write lock after this
SQLITE_NO_DEADLINE_BUSY_MS = 30_000


def _postgres_deadlines(settings: Settings, server_settings: dict[str, str]) -> None:
    """Per-connection deadlines as asyncpg ``server_settings`` (a value in the DSN wins). A database
    that stops answering altogether is cut by the request deadline (``http/deadline.py``), which
    cancels the request; SQLAlchemy then drops the connection instead of waiting on it."""
    if settings.db_statement_timeout_ms:
        server_settings.setdefault("statement_timeout", str(settings.db_statement_timeout_ms))
        server_settings.setdefault("lock_timeout", str(settings.db_statement_timeout_ms))
    if settings.db_idle_in_transaction_timeout_ms:
        server_settings.setdefault(
            "idle_in_transaction_session_timeout", str(settings.db_idle_in_transaction_timeout_ms)
        )


def _sqlite_events(engine: AsyncEngine, busy_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={int(busy_ms)}",
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # reads take no write lock; a unit of work takes it up front (no read-to-write upgrade)
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


class Database:
    """Owns the engine; hands out units of work (one transaction each) and read sessions.

    ``transaction()`` is the only way to write (services reach it through ``uow.Store``, which adds
    the audit writer and the event publisher). ``reader()`` gives a session for plain reads (on
    SQLite it does not take the write lock).
    """

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings)
        self.sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
        )
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # PostgreSQL: a single read-only statement needs no transaction (no BEGIN/ROLLBACK round
        # trips); ``db.driver`` runs it outside one on a connection with this option. (Not the
        # AUTOCOMMIT isolation level: setting and resetting it at every checkout costs ~100 µs.)
        self._single = (
            self.engine.execution_options(**{READ_ONLY: True, SINGLE_STATEMENT: True})
            if self.engine.dialect.name == "postgresql"
            else None
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def reader(self) -> AsyncSession:
        """A session for plain reads (``async with db.reader() as tx``): on SQLite its transaction
        is a plain ``BEGIN``, not the writer lock; it never commits anything."""
        return self.sessionmaker()

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for ONE read-only statement (``async with db.single_read() as conn``). On
        PostgreSQL, run by ``db.driver``, it runs outside any transaction: no ``BEGIN``/``ROLLBACK``
        round trips around the statement (one statement sees one snapshot anyway); a statement run
        through SQLAlchemy begins a transaction as usual (rolled back at the end). On SQLite: a read
        session's plain ``BEGIN``."""
        if self._single is None:
            async with self.reader() as tx:
                yield await tx.connection()
            return
        async with self._single.connect() as conn:
            yield conn

    @asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction on a plain connection (no ORM session): commits when the block
        exits normally, rolls back on any exception. ``uow.Store.begin`` builds on it."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block exits normally, rolls back on any exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
