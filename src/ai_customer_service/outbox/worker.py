"""The delivery worker: claim due events, deliver them outside any transaction, record the outcomes.

Runs inside the server (``ctx.workers.every``) and standalone (``ai-customer-service outbox worker``);
any number of them may run against one database. Per batch:

1. a short transaction leases due events (``claimed_by``, ``claim_expires_at``) and counts the
   attempt: the earliest pending event of up to ``AI_CS_OUTBOX_BATCH_SIZE`` sessions, each with up
   to ``AI_CS_OUTBOX_SESSION_BATCH - 1`` of the session's next events behind it (a *run*), and only
   for destinations this process knows (another replica's events are left alone);
2. the signed POSTs happen with no transaction open, in ``AI_CS_OUTBOX_CONCURRENCY`` lanes, each with
   one kept-alive connection, taking runs from a queue: runs of different sessions concurrently, the
   events of a run strictly one after the other; a run stops at the first event that is not
   acknowledged (it retries later, and the rest of the run is given back unattempted) and never
   starts an event its lease may not cover. The next batch is claimed while the lanes still post,
   as soon as fewer runs wait than there are lanes (after writing the outcomes so far, so a
   session whose run just finished has its next events due);
3. outcomes are recorded in a few short transactions for many events at once (every
   :data:`FLUSH_SECONDS` or :data:`FLUSH_EVENTS` outcomes, before each claim, and at the end of the
   drain): 2xx → ``delivered``; else a retry at ``now + U(0, min(cap, base·2^(attempt-1)))`` (full
   jitter) or, after ``callback_max_retries`` retries, ``dead``.

A worker that dies between 1 and 3 leaves leases that expire; another worker then delivers those
events again (at-least-once; receivers deduplicate on the event ``id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from ai_customer_service.config import Settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.outbox import repository
from ai_customer_service.outbox.delivery import (
    ClaimedEvent,
    DeliveryResult,
    Destination,
    deliver,
    known_destinations,
    resolve_destination,
)

log = get_logger(__name__)

Clock = Callable[[], datetime]


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, base·2^(attempt-1))]``."""
    ceiling = min(cap, base * (2 ** min(max(attempt - 1, 0), 62)))
    return rng.uniform(0, ceiling)


@dataclass
class BatchReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    released: int = 0  # claimed but given back unattempted (behind a retry, or the lease ran short)


# outcomes are written to the database this often, or as soon as this many are waiting
FLUSH_SECONDS = 0.25
FLUSH_EVENTS = 200
# while runs are in flight and nothing else is due, look for new events this often
RECLAIM_SECONDS = 0.25
# a claimed event is only sent while the lease covers its callback timeout plus this margin
LEASE_MARGIN_SECONDS = 1.0
# pending events of a destination this process does not know are logged at most this often
UNKNOWN_LOG_SECONDS = 300.0
# how often the standalone worker looks for such events
UNKNOWN_CHECK_SECONDS = 15.0


@dataclass
class _Outcome:
    event: ClaimedEvent
    result: DeliveryResult
    status: str
    next_attempt_at: datetime | None
    outcome: str
    at: datetime


@dataclass
class OutboxWorker:
    settings: Settings
    db: Database
    metrics: Metrics | None = None
    name: str = field(default_factory=worker_name)
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)
    transport: httpx.AsyncBaseTransport | None = None
    # pending events per destination this process cannot deliver (refreshed by check_destinations)
    unknown_destinations: dict[str, int] = field(default_factory=dict)
    _unknown_logged: dict[str, float] = field(default_factory=dict, repr=False)
    _unknown_checked: float = field(default=float("-inf"), repr=False)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    def _http(self) -> httpx.AsyncClient:
        """A keep-alive client for one delivery lane: one connection, reused for the lane's runs.

        One client per lane rather than one pool shared by the lanes: httpcore's pool examines every
        connection it holds on each request and each response (a ``poll`` per idle connection), which
        with 16 connections cost about as much CPU as the rest of a delivery together. The TLS
        context (loading the CA bundle takes milliseconds) is built once per worker.
        """
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return httpx.AsyncClient(
            transport=self.transport,
            verify=self._ssl,
            follow_redirects=False,
            # an idle connection is dropped before common servers' 5 s keep-alive closes it (a POST
            # sent as the server closes fails before any answer, and costs a retry)
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4),
        )

    async def run_once(self) -> BatchReport:
        """Claim one batch and deliver it (runs of different sessions concurrently)."""
        return await self._deliver(max_batches=1)

    async def drain(self, max_batches: int = 20) -> BatchReport:
        """Claim and deliver while there is work (the in-server job), at most ``max_batches`` claims.

        The next batch is claimed while the lanes still post the previous one (as soon as fewer runs
        are waiting than there are lanes), after the outcomes so far are written: a delivery makes
        the session's next event due at once, so a session's later events follow within the drain
        instead of waiting for the next poll. Stops when a claim finds nothing and no run is left,
        or when a claim was not full and nothing was delivered since the one before (only retries
        or failures: they wait for their backoff).
        """
        return await self._deliver(max_batches=max_batches)

    async def _deliver(self, *, max_batches: int) -> BatchReport:
        report = BatchReport()
        known = known_destinations(self.settings)
        if not known:
            return report
        size = self.settings.outbox_concurrency
        queue: asyncio.Queue[list[ClaimedEvent] | None] = asyncio.Queue()
        progress = asyncio.Event()  # a lane finished a run
        recorder = _Recorder(self, report)
        busy = 0
        lanes: list[asyncio.Task[None]] = []

        async def lane() -> None:
            """Deliver runs from the queue over one kept-alive connection until told to stop."""
            nonlocal busy
            async with self._http() as client:
                while (run := await queue.get()) is not None:
                    busy += 1
                    try:
                        await self._deliver_run(client, run, recorder)
                    except Exception as exc:  # the lease makes those events come back later
                        log.error("outbox delivery failed", error=type(exc).__name__)
                    finally:
                        busy -= 1
                        progress.set()

        flusher = asyncio.create_task(recorder.run(), name="outbox-recorder")
        failure: Exception | None = None
        try:
            claims = 0
            delivered_before = failed_before = 0
            while claims < max_batches:
                while queue.qsize() >= size:  # the lanes have enough to do
                    progress.clear()
                    await progress.wait()
                if claims:
                    await recorder.flush_now()  # finished sessions' next events become due
                try:
                    events = await self._claim(known)
                except Exception as exc:  # let the runs already claimed finish and be recorded
                    failure = exc
                    break
                if not events:
                    if not busy and queue.empty():
                        break
                    # until a run finishes (its session may have more now), and at least every
                    # RECLAIM_SECONDS: a lane waiting on a slow receiver holds back no other session
                    progress.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(progress.wait(), timeout=RECLAIM_SECONDS)
                    continue
                claims += 1
                report.claimed += len(events)
                for run in _runs(events):
                    queue.put_nowait(run)
                starting = min(size - len(lanes), queue.qsize())
                lanes += [asyncio.create_task(lane(), name="outbox-lane") for _ in range(starting)]
                failed = report.retried + report.dead
                full = len(events) >= self.settings.outbox_batch_size
                if not full and report.delivered == delivered_before and failed > failed_before:
                    break  # only retries and failures lately: they wait for their backoff
                delivered_before, failed_before = report.delivered, failed
            for _ in lanes:
                queue.put_nowait(None)
            if lanes:
                await asyncio.wait(lanes)
        finally:
            for task in lanes:
                task.cancel()
            await recorder.close(flusher)
        if failure is not None:
            raise failure
        return report

    async def _claim(self, known: Sequence[str]) -> list[ClaimedEvent]:
        async with self.db.transaction() as tx:
            return await repository.claim(
                tx,
                worker=self.name,
                now=self.clock(),
                lease_seconds=self.settings.outbox_lease_seconds,
                limit=self.settings.outbox_batch_size,
                destinations=known,
                per_session=self.settings.outbox_session_batch,
            )

    def _may_start(self, event: ClaimedEvent, destination: Destination, *, first: bool) -> bool:
        """Whether this worker's lease still covers a whole attempt of ``event`` (else another worker
        may claim it, or its successor, while this one is still sending). A run's first event is
        started as long as it was claimed just now (its lease is as long as it gets); one that has
        waited in the queue for a lane is checked like the rest."""
        if event.lease_expires_at is None:
            return True
        left = (event.lease_expires_at - self.clock()).total_seconds()
        if first and self.settings.outbox_lease_seconds - left <= LEASE_MARGIN_SECONDS:
            return True
        return left > destination.timeout_seconds + LEASE_MARGIN_SECONDS

    async def _deliver_run(
        self, client: httpx.AsyncClient, run: list[ClaimedEvent], recorder: _Recorder
    ) -> None:
        """Deliver a session's claimed events in order; stop at the first one not acknowledged."""
        for index, event in enumerate(run):
            destination = resolve_destination(self.settings, event.destination)
            if destination is None or not self._may_start(event, destination, first=not index):
                recorder.release(run[index:])
                return
            result = await deliver(client, event, destination, now=time.time())
            now = self.clock()
            if result.ok:
                recorder.add(_Outcome(event, result, repository.DELIVERED, None, "delivered", now))
                continue
            if event.attempt > destination.max_retries:
                recorder.add(_Outcome(event, result, repository.DEAD, None, "dead", now))
                continue  # a dead event does not hold its session back
            delay = backoff_seconds(
                event.attempt,
                base=self.settings.outbox_retry_base_seconds,
                cap=self.settings.outbox_retry_cap_seconds,
                rng=self.rng,
            )
            retry_at = now + timedelta(seconds=delay)
            recorder.add(_Outcome(event, result, repository.PENDING, retry_at, "retry", now))
            recorder.release(run[index + 1 :])
            return

    async def refresh_metrics(self) -> None:
        if self.metrics is None:
            return
        async with self.db.reader() as tx:
            depth = await repository.depth(tx)
        self.metrics.outbox_pending.set(depth.pending)
        self.metrics.outbox_dead.set(depth.dead)
        age = 0.0
        if depth.oldest_pending_created_at is not None:
            age = max(0.0, (self.clock() - depth.oldest_pending_created_at).total_seconds())
        self.metrics.outbox_oldest_age.set(age)
        await self.check_destinations()

    async def check_destinations(self, *, force: bool = True) -> dict[str, int]:
        """Count pending events of destinations this process does not know, set the gauge and log a
        warning (once per destination per :data:`UNKNOWN_LOG_SECONDS`). Those events are never
        touched here: a replica that knows the destination delivers them."""
        started = time.monotonic()
        if not force and started - self._unknown_checked < UNKNOWN_CHECK_SECONDS:
            return self.unknown_destinations
        self._unknown_checked = started
        known = known_destinations(self.settings)
        async with self.db.reader() as tx:
            unknown = await repository.pending_elsewhere(tx, known)
        if self.metrics is not None:
            for gone in set(self.unknown_destinations) - set(unknown):
                self.metrics.outbox_unknown_destination.labels(gone).set(0)
            for destination, count in unknown.items():
                self.metrics.outbox_unknown_destination.labels(destination).set(count)
        for destination, count in unknown.items():
            last = self._unknown_logged.get(destination)
            if last is None or started - last >= UNKNOWN_LOG_SECONDS:
                self._unknown_logged[destination] = started
                log.warning(
                    "pending outbox events for a destination this process does not deliver to: left "
                    "for a replica that has it configured (check this replica's AI_CS_PLATFORM_* / "
                    "AI_CS_CHANNEL_*_CALLBACK_* settings)",
                    destination=destination,
                    pending=count,
                    known=",".join(known) or "none",
                )
        self.unknown_destinations = unknown
        return unknown


def _runs(events: Sequence[ClaimedEvent]) -> list[list[ClaimedEvent]]:
    """Group claimed events into runs: consecutive events of one (destination, session), in order."""
    runs: dict[tuple[str, uuid.UUID] | int, list[ClaimedEvent]] = {}
    for event in events:
        key: tuple[str, uuid.UUID] | int = (
            (event.destination, event.session_id) if event.session_id is not None else event.seq
        )
        runs.setdefault(key, []).append(event)
    return list(runs.values())


class _Recorder:
    """Collects outcomes and given-back claims; writes them in one transaction every
    :data:`FLUSH_SECONDS` (or :data:`FLUSH_EVENTS`) instead of one transaction per event."""

    def __init__(self, worker: OutboxWorker, report: BatchReport) -> None:
        self.worker = worker
        self.report = report
        self.outcomes: list[_Outcome] = []
        self.released: list[ClaimedEvent] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closed = False

    def add(self, outcome: _Outcome) -> None:
        self.outcomes.append(outcome)
        if len(self.outcomes) >= FLUSH_EVENTS:
            self._wake.set()

    def release(self, events: Sequence[ClaimedEvent]) -> None:
        self.released.extend(events)

    async def run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_SECONDS)
            self._wake.clear()
            if not self._closed:
                await self.flush_now()

    async def close(self, flusher: asyncio.Task[None]) -> None:
        self._closed = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await self.flush_now()

    async def flush_now(self) -> None:
        """Write what is waiting; one flush at a time (a session's outcomes are written in order)."""
        async with self._lock:
            try:
                await self.flush()
            except Exception as exc:  # the database may be away: the leases bring the events back later
                log.error("outbox bookkeeping failed", error=type(exc).__name__, exc_info=exc)

    async def flush(self) -> None:
        outcomes, self.outcomes = self.outcomes, []
        released, self.released = self.released, []
        if not outcomes and not released:
            return
        worker = self.worker
        now = worker.clock()
        async with worker.db.transaction() as tx:
            delivered = [(o.event, o.result.status_code or 200) for o in outcomes if o.outcome == "delivered"]
            done = await repository.mark_delivered(tx, delivered, now=now) if delivered else set()
            for o in outcomes:
                if o.outcome == "delivered":
                    if o.event.seq not in done:
                        o.outcome = "lost_lease"
                    continue
                owned = await repository.finish(
                    tx,
                    o.event,
                    worker=worker.name,
                    now=o.at,
                    status=o.status,
                    next_attempt_at=o.next_attempt_at,
                    last_status=o.result.status_code,
                    last_error=o.result.error,
                )
                if not owned:
                    o.outcome = "lost_lease"
            if released:
                await repository.release(tx, released, worker=worker.name, now=now)
            await repository.add_attempts(
                tx,
                [
                    repository.AttemptRecord(
                        event=o.event,
                        at=o.at,
                        status_code=o.result.status_code,
                        error=o.result.error,
                        duration_ms=o.result.duration_ms,
                        excerpt=o.result.excerpt,
                        outcome=o.outcome,
                    )
                    for o in outcomes
                ],
                worker=worker.name,
            )
        self.report.released += len(released)
        for o in outcomes:
            self._account(o)

    def _account(self, o: _Outcome) -> None:
        if self.worker.metrics is not None:
            self.worker.metrics.outbox_deliveries.labels(o.outcome).inc()
        field_name = _REPORT_FIELD[o.outcome]
        setattr(self.report, field_name, getattr(self.report, field_name) + 1)
        if o.outcome == "delivered" and not _debug_enabled():
            return  # nothing to say; building the fields for a filtered-out line costs CPU per event
        fields = {
            "event_id": str(o.event.id),
            "event_type": o.event.type,
            "destination": o.event.destination,
            "attempt": o.event.attempt,
            "status_code": o.result.status_code,
            "error": o.result.error,
            "duration_ms": o.result.duration_ms,
            "outcome": o.outcome,
        }
        if o.outcome == "delivered":
            log.debug("outbox event delivered", **fields)
        elif o.outcome == "dead":
            log.warning("outbox event dead-lettered", **fields)
        else:
            log.info("outbox delivery not acknowledged", **fields)


def _debug_enabled() -> bool:
    return logging.getLogger(__name__).isEnabledFor(logging.DEBUG)


_REPORT_FIELD = {"delivered": "delivered", "retry": "retried", "dead": "dead", "lost_lease": "lost"}
