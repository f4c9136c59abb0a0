"""The unit of work: one transaction and what a change writes with it.

A service opens one with :meth:`Store.begin`; the :class:`UnitOfWork` it gets carries the
transaction (repositories work on ``uow.tx`` / its connection), the audit writer (:meth:`audit`) and
the event publisher (:meth:`publish`), so a state change, its audit row and its outbox events are
written by the same object and commit together, or not at all. There is no way to reach a write
transaction without the publisher. Plain reads use :meth:`Store.read`, a read-only session (on
SQLite a plain ``BEGIN``: no writer lock).

It sits above ``db`` (the engine), ``audit`` and ``outbox`` (the publisher), and below the domains
that use it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.db.engine import Database
from ai_customer_service.live import insert_live
from ai_customer_service.outbox.events import EventType
from ai_customer_service.outbox.publisher import EventPublisher, SessionRef, TicketRef


class UnitOfWork:
    """One open transaction with its audit writer and event publisher.

    ``conn`` is the transaction's connection (Core statements); ``tx`` an ORM session on the same
    connection and transaction, made on first use (the message path's common case writes with Core
    statements alone and never pays for one).
    """

    __slots__ = ("_events", "_live", "_session", "conn")

    def __init__(self, conn: AsyncConnection, events: EventPublisher) -> None:
        self.conn = conn
        self._session: AsyncSession | None = None
        self._events = events
        self._live: list[dict[str, Any]] = []  # live-stream rows not written yet, in publication order

    @property
    def tx(self) -> AsyncSession:
        """The ORM session of this unit of work (it never commits: the unit of work does)."""
        if self._session is None:
            self._session = AsyncSession(
                bind=self.conn,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="rollback_only",
            )
        return self._session

    def _orm(self) -> AsyncSession:
        return self.tx

    async def flush(self) -> None:
        """Write the ORM session's pending changes now (inside the transaction), if there are any."""
        session = self._session
        if session is not None and (session.new or session.dirty or session.deleted):
            await session.flush()

    def take_live(self) -> list[dict[str, Any]]:
        """The live-stream rows published so far and not yet written, for a caller that writes them
        in its own statement of this transaction (they are then no longer written at commit)."""
        rows, self._live = self._live, []
        return rows

    async def flush_live(self) -> None:
        """Write the live-stream rows still pending (:meth:`Store.begin` does, before it commits)."""
        if self._live:
            await insert_live(self.conn, self.take_live())

    def audit(self, **fields: Any) -> None:
        """Add one audit row (the fields of :func:`audit.repository.record`)."""
        audit.record(self.tx, **fields)

    def publish(
        self,
        session: SessionRef,
        type: EventType,
        data: dict[str, Any],
        *,
        ticket_id: uuid.UUID | None = None,
        source_message_id: str | None = None,
    ) -> list[uuid.UUID]:
        """Add a session's event for its subscribers and the live streams; the outbox event ids."""
        return self._events.publish(
            self._orm,
            session,
            type,
            data,
            live=self._live,
            ticket_id=ticket_id,
            source_message_id=source_message_id,
        )

    def publish_handoff(
        self,
        session: SessionRef,
        ticket: TicketRef,
        *,
        source_message_id: str | None = None,
        manual: bool = False,
    ) -> None:
        self._events.publish_handoff(
            self._orm, session, ticket, live=self._live, source_message_id=source_message_id, manual=manual
        )


class Store:
    """The database and the event publisher of a running app: units of work and reads."""

    def __init__(self, db: Database, events: EventPublisher) -> None:
        self.db = db
        self.events = events

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """One unit of work: commits when the block exits normally (after writing its pending
        live-stream rows), rolls back on any exception (they are then never written)."""
        async with self.db.core_transaction() as conn:
            uow = UnitOfWork(conn, self.events)
            try:
                yield uow
                await uow.flush_live()
                await uow.flush()
            finally:
                if uow._session is not None:
                    await uow._session.close()

    def read_one(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for one read-only statement (``async with store.read_one() as conn``): on
        PostgreSQL outside any transaction (no ``BEGIN``/``ROLLBACK`` round trips)."""
        return self.db.single_read()

    def read(self) -> AsyncSession:
        """A read-only session (``async with store.read() as tx``): no writes, no writer lock."""
        return self.db.reader()
