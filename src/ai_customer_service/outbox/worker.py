"""The delivery worker: claim due events, deliver each outside any transaction, record the outcome.

Runs inside the server (``ctx.workers.every``) and standalone (``ai-customer-service outbox worker``);
any number of them may run against one database. Per event:

1. a short transaction leases it (``claimed_by``, ``claim_expires_at``) and counts the attempt;
2. the signed POST happens with no transaction open;
3. a second short transaction records the attempt and moves the event on: 2xx → ``delivered``; else
   a retry at ``now + U(0, min(cap, base·2^(attempt-1)))`` (full jitter) or, after
   ``callback_max_retries`` retries, ``dead``.

A worker that dies between 1 and 3 leaves a lease that expires; another worker then delivers the
event again (at-least-once; receivers deduplicate on the event ``id``).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from ai_customer_service.config import Settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.http.metrics import Metrics
from ai_customer_service.logs import get_logger
from ai_customer_service.outbox import repository
from ai_customer_service.outbox.delivery import ClaimedEvent, DeliveryResult, deliver, resolve_destination

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


@dataclass
class OutboxWorker:
    settings: Settings
    db: Database
    metrics: Metrics | None = None
    name: str = field(default_factory=worker_name)
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)
    transport: httpx.AsyncBaseTransport | None = None

    async def run_once(self) -> BatchReport:
        """Claim one batch and deliver it (deliveries of the batch run concurrently)."""
        async with self.db.transaction() as tx:
            events = await repository.claim(
                tx,
                worker=self.name,
                now=self.clock(),
                lease_seconds=self.settings.outbox_lease_seconds,
                limit=self.settings.outbox_batch_size,
            )
        report = BatchReport(claimed=len(events))
        if not events:
            return report
        limit = asyncio.Semaphore(self.settings.outbox_concurrency)
        async with httpx.AsyncClient(transport=self.transport, follow_redirects=False) as client:

            async def one(event: ClaimedEvent) -> None:
                async with limit:
                    await self._deliver_one(client, event, report)

            outcomes = await asyncio.gather(*(one(event) for event in events), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):  # the lease makes that event come back later
                    log.error("outbox delivery bookkeeping failed", error=type(outcome).__name__)
        return report

    async def drain(self, max_batches: int = 20) -> BatchReport:
        """Run batches while there is work (the in-server job), at most ``max_batches``.

        Events of one session go out in order, one at a time, so a delivery makes the session's next
        event due at once: keep going after any delivery instead of waiting for the next poll (a
        handoff's five events used to take five poll intervals). Stop when a batch claims nothing,
        or delivers nothing and was not full (only retries or failures: they wait for their backoff).
        """
        total = BatchReport()
        for _ in range(max_batches):
            report = await self.run_once()
            for name in ("claimed", "delivered", "retried", "dead", "lost"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if not report.claimed:
                break
            if not report.delivered and report.claimed < self.settings.outbox_batch_size:
                break
        return total

    async def _deliver_one(self, client: httpx.AsyncClient, event: ClaimedEvent, report: BatchReport) -> None:
        destination = resolve_destination(self.settings, event.destination)
        if destination is None:
            result = DeliveryResult(None, "DestinationNotConfigured", 0.0, None)
            max_retries = 0
        else:
            result = await deliver(client, event, destination, now=time.time())
            max_retries = destination.max_retries
        now = self.clock()
        if result.ok:
            status, next_at, outcome = repository.DELIVERED, None, "delivered"
        elif event.attempt > max_retries:
            status, next_at, outcome = repository.DEAD, None, "dead"
        else:
            delay = backoff_seconds(
                event.attempt,
                base=self.settings.outbox_retry_base_seconds,
                cap=self.settings.outbox_retry_cap_seconds,
                rng=self.rng,
            )
            status, next_at, outcome = repository.PENDING, now + timedelta(seconds=delay), "retry"
        async with self.db.transaction() as tx:
            owned = await repository.finish(
                tx,
                event,
                worker=self.name,
                now=now,
                status=status,
                next_attempt_at=next_at,
                last_status=result.status_code,
                last_error=result.error,
            )
            if not owned:
                outcome = "lost_lease"
            repository.add_attempt(
                tx,
                event,
                worker=self.name,
                now=now,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
                excerpt=result.excerpt,
                outcome=outcome,
            )
        if self.metrics is not None:
            self.metrics.outbox_deliveries.labels(outcome).inc()
        setattr(report, _REPORT_FIELD[outcome], getattr(report, _REPORT_FIELD[outcome]) + 1)
        fields = {
            "event_id": str(event.id),
            "event_type": event.type,
            "destination": event.destination,
            "attempt": event.attempt,
            "status_code": result.status_code,
            "error": result.error,
            "duration_ms": result.duration_ms,
            "outcome": outcome,
        }
        if outcome == "delivered":
            log.debug("outbox event delivered", **fields)
        elif outcome == "dead":
            log.warning("outbox event dead-lettered", **fields)
        else:
            log.info("outbox delivery not acknowledged", **fields)

    async def refresh_metrics(self) -> None:
        if self.metrics is None:
            return
        async with self.db.transaction() as tx:
            depth = await repository.depth(tx)
        self.metrics.outbox_pending.set(depth.pending)
        self.metrics.outbox_dead.set(depth.dead)
        age = 0.0
        if depth.oldest_pending_created_at is not None:
            age = max(0.0, (self.clock() - depth.oldest_pending_created_at).total_seconds())
        self.metrics.outbox_oldest_age.set(age)


_REPORT_FIELD = {"delivered": "delivered", "retry": "retried", "dead": "dead", "lost_lease": "lost"}
