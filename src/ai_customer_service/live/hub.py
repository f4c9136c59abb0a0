"""The live-event hub: one per process, it follows ``cs_live_events`` and fans events out to streams.

Writing: every event is written in the caller's transaction, so a browser never sees a change that
was rolled back, and every replica sees every committed change. The outbox publisher makes a
:func:`live_row` for every conversation and ticket event and the unit of work writes them, in order,
before it commits (:func:`insert_live`; the webhook folds them into its one write statement on
PostgreSQL). :func:`publish_live` adds one to an ORM session; :meth:`LiveHub.broadcast` writes an
ephemeral event (such as "typing") in a short transaction of its own.

Reading: while at least one stream is open, the hub polls the table (an indexed range read every
``AI_CS_LIVE_POLL_INTERVAL_MS``) and hands each new event to the subscriptions that want it. On
PostgreSQL a transaction may commit after a later one, so a ``seq`` can appear after a higher one: the
hub remembers the holes below the highest ``seq`` it has seen and looks for them again for
``GAP_SECONDS`` (after that the hole is a rolled-back transaction). Such a late event is delivered when
it appears; a client that reconnected in between resumes after its ``Last-Event-ID`` and may miss it
(the console and widget re-read the conversation on a ``stream.reset`` or a reload).

A subscription that falls ``QUEUE_SIZE`` events behind, or whose hub stops, is closed
(:class:`StreamClosed` from :meth:`Subscription.next`); its client reconnects with ``Last-Event-ID``
and gets the missed events from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.db.base import utcnow
from ai_customer_service.db.batches import delete_in_batches
from ai_customer_service.db.engine import Database
from ai_customer_service.live.models import LiveEventRow
from ai_customer_service.logs import get_logger
from ai_customer_service.values import json_safe

log = get_logger(__name__)

RESET = "stream.reset"  # the replay was cut short: re-read the state instead of trusting the stream
GAP_SECONDS = 15.0
MAX_GAPS = 5000
POLL_BATCH = 1000
REPLAY_LIMIT = 1000
QUEUE_SIZE = 2000


@dataclass(frozen=True)
class LiveEvent:
    seq: int
    type: str
    session_id: uuid.UUID | None
    ticket_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return json_safe(
            {
                "seq": self.seq,
                "type": self.type,
                "session_id": self.session_id,
                "ticket_id": self.ticket_id,
                "data": self.data,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_row(cls, row: LiveEventRow) -> LiveEvent:
        return cls(row.seq, row.type, row.session_id, row.ticket_id, row.payload, row.created_at)


class StreamClosed(Exception):
    """The hub is stopping, or the subscriber fell too far behind: end the stream; the client
    reconnects with ``Last-Event-ID`` (to this or another replica) and misses nothing."""


LIVE_TABLE: Table = LiveEventRow.__table__  # type: ignore[assignment]
# executed with a list of rows (one round trip); ``seq`` comes from the table's sequence, in row order
_INSERT_LIVE = insert(LIVE_TABLE)


def live_row(
    *, type: str, session_id: uuid.UUID | None, ticket_id: uuid.UUID | None = None, data: dict[str, Any]
) -> dict[str, Any]:
    """One ``cs_live_events`` row without its ``seq`` (written by :func:`insert_live`, or folded into
    another statement of the same transaction)."""
    return {
        "type": type,
        "session_id": session_id,
        "ticket_id": ticket_id,
        "payload": json_safe(data),
        "created_at": utcnow(),
    }


async def insert_live(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write :func:`live_row` rows in the caller's transaction, in list order (their ``seq`` order)."""
    if len(rows) == 1:
        await conn.execute(_INSERT_LIVE, rows[0])
    elif rows:
        await conn.execute(_INSERT_LIVE, rows)


def publish_live(
    tx: AsyncSession,
    *,
    type: str,
    session_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None = None,
    data: dict[str, Any],
) -> None:
    """Add one live event to the caller's transaction (it commits with the change, or not at all)."""
    tx.add(
        LiveEventRow(
            type=type,
            session_id=session_id,
            ticket_id=ticket_id,
            payload=json_safe(data),
            created_at=utcnow(),
        )
    )


class Subscription:
    """The events of one session (or of all sessions) for one stream; use as an async context manager."""

    def __init__(self, hub: LiveHub, session_id: uuid.UUID | None, after_seq: int | None) -> None:
        self._hub = hub
        self.session_id = session_id
        self._after = after_seq
        self._queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._backlog: deque[LiveEvent] = deque()
        self._replayed: set[int] = set()
        self._closed = False

    async def __aenter__(self) -> Subscription:
        # register first, then read the table: an event committed in between is in both and is
        # dropped once from the queue, so nothing falls between the replay and the live events
        await self._hub._register(self)
        if self._after is not None:
            try:
                replay = await self._hub.replay(session_id=self.session_id, after_seq=self._after)
            except BaseException:
                self._hub._unregister(self)
                raise
            if len(replay) >= REPLAY_LIMIT:
                last = replay[-1]
                replay = [LiveEvent(last.seq, RESET, self.session_id, None, {}, last.created_at)]
            self._backlog.extend(replay)
            self._replayed = {event.seq for event in replay}
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._hub._unregister(self)

    def wants(self, event: LiveEvent) -> bool:
        return self.session_id is None or event.session_id == self.session_id

    def offer(self, event: LiveEvent) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """End the stream: :meth:`next` raises :class:`StreamClosed` once the queue is read."""
        if self._closed:
            return
        self._closed = True
        self._hub._unregister(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, timeout: float) -> LiveEvent | None:  # noqa: ASYNC109 (a keep-alive period)
        """The next event, or None when ``timeout`` seconds pass without one (send a keep-alive)."""
        if self._backlog:
            return self._backlog.popleft()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                event = await asyncio.wait_for(self._queue.get(), timeout=left)
            except TimeoutError:
                return None
            if event is None:
                raise StreamClosed("the stream was closed; reconnect with Last-Event-ID")
            if event.seq in self._replayed:
                self._replayed.discard(event.seq)
                continue
            if self._after is not None and event.seq <= self._after:
                # a replica that lags behind the one the client came from: the client has it already
                continue
            return event


class LiveHub:
    """Follows ``cs_live_events`` for this process's open streams."""

    def __init__(self, db: Database, *, poll_interval_seconds: float = 0.3) -> None:
        self.db = db
        self.poll_interval = poll_interval_seconds
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._max_seen: int | None = None
        self._gaps: dict[int, float] = {}  # seq below the highest seen, not yet seen -> first noticed

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, *, session_id: uuid.UUID | None = None, after_seq: int | None = None) -> Subscription:
        """A subscription to one session's events (or all, with None), optionally replaying the events
        after ``after_seq`` (a stream's ``Last-Event-ID``) before the live ones."""
        return Subscription(self, session_id, after_seq)

    async def broadcast(
        self,
        *,
        type: str,
        session_id: uuid.UUID | None,
        ticket_id: uuid.UUID | None = None,
        data: dict[str, Any],
    ) -> None:
        """Write an ephemeral event (not a change of state) so that every replica's streams see it."""
        async with self.db.transaction() as tx:
            publish_live(tx, type=type, session_id=session_id, ticket_id=ticket_id, data=data)

    async def replay(self, *, session_id: uuid.UUID | None, after_seq: int) -> list[LiveEvent]:
        """Stored events after ``after_seq`` (of one session, or all), oldest first, at most REPLAY_LIMIT."""
        stmt = select(LiveEventRow).where(LiveEventRow.seq > after_seq)
        if session_id is not None:
            stmt = stmt.where(LiveEventRow.session_id == session_id)
        async with self.db.sessionmaker() as session:
            rows = (await session.execute(stmt.order_by(LiveEventRow.seq).limit(REPLAY_LIMIT))).scalars()
            return [LiveEvent.from_row(row) for row in rows]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in list(self._subscriptions):
            subscription.close()

    async def _register(self, subscription: Subscription) -> None:
        if not self._subscriptions and self._max_seen is None:
            # the first stream after an idle period: follow from the table's current end
            self._max_seen = await self._current_max()
            self._gaps.clear()
        self._subscriptions.add(subscription)
        self._wake.set()

    def _unregister(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def _current_max(self) -> int:
        async with self.db.sessionmaker() as session:
            return int((await session.execute(select(func.max(LiveEventRow.seq)))).scalar() or 0)

    async def _run(self) -> None:
        while True:
            if not self._subscriptions:
                self._max_seen = None  # nobody listens: stop following until the next stream opens
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                full = await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live events poll failed; retrying", error=type(exc).__name__)
                full = False
                await asyncio.sleep(max(1.0, self.poll_interval))
            if not full:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def poll(self) -> bool:
        """Read and dispatch new events once; True when a full batch came (poll again at once)."""
        if self._max_seen is None:
            self._max_seen = await self._current_max()
        async with self.db.sessionmaker() as session:
            fresh = list(
                (
                    await session.execute(
                        select(LiveEventRow)
                        .where(LiveEventRow.seq > self._max_seen)
                        .order_by(LiveEventRow.seq)
                        .limit(POLL_BATCH)
                    )
                ).scalars()
            )
            late: list[LiveEventRow] = []
            if self._gaps:
                late = list(
                    (
                        await session.execute(
                            select(LiveEventRow).where(LiveEventRow.seq.in_(list(self._gaps)[:POLL_BATCH]))
                        )
                    ).scalars()
                )
        self._dispatch(self._track(fresh, late))
        return len(fresh) >= POLL_BATCH

    def _track(self, fresh: list[LiveEventRow], late: list[LiveEventRow]) -> list[LiveEvent]:
        """Update the highest seen ``seq`` and the holes below it; the events to hand out, in order."""
        now = time.monotonic()
        assert self._max_seen is not None
        for row in late:
            self._gaps.pop(row.seq, None)
        previous = self._max_seen
        for row in fresh:
            for missing in range(max(previous + 1, row.seq - MAX_GAPS), row.seq):
                self._gaps.setdefault(missing, now)
            previous = row.seq
        self._max_seen = previous
        expired = [seq for seq, noticed in self._gaps.items() if now - noticed > GAP_SECONDS]
        for seq in expired:
            del self._gaps[seq]
        if len(self._gaps) > MAX_GAPS:
            for seq in sorted(self._gaps)[: len(self._gaps) - MAX_GAPS]:
                del self._gaps[seq]
        return [LiveEvent.from_row(row) for row in sorted((*late, *fresh), key=lambda r: r.seq)]

    def _dispatch(self, events: Iterable[LiveEvent]) -> None:
        for event in events:
            for subscription in list(self._subscriptions):
                if subscription.wants(event):
                    subscription.offer(event)


async def purge_live_events(
    db: Database, *, retention_hours: int, batch: int = 5000, time_budget_seconds: float = 30.0
) -> int:
    """Delete live events older than ``retention_hours`` in short transactions; returns how many."""
    before = utcnow() - timedelta(hours=retention_hours)

    async def delete_batch(tx: AsyncSession) -> int:
        seqs = (
            (
                await tx.execute(
                    select(LiveEventRow.seq)
                    .where(LiveEventRow.created_at < before)
                    .order_by(LiveEventRow.seq)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if seqs:
            await tx.execute(delete(LiveEventRow).where(LiveEventRow.seq.in_(seqs)))
        return len(seqs)

    return await delete_in_batches(db, delete_batch, batch=batch, time_budget_seconds=time_budget_seconds)
