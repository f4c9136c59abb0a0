"""Reads and writes of ``cs_platform_outbox`` inside the caller's transaction (never commits).

Claiming is the one statement that differs by store, and only in the lock clause: PostgreSQL gets
``FOR UPDATE SKIP LOCKED`` so concurrent workers skip each other's rows; SQLite renders no lock
clause and relies on its single writer (every transaction starts with ``BEGIN IMMEDIATE``), which
makes the select-then-update atomic just the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ai_customer_service.outbox.delivery import ClaimedEvent
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent, OutboxStatus

PENDING = OutboxStatus.PENDING.value
DELIVERED = OutboxStatus.DELIVERED.value
DEAD = OutboxStatus.DEAD.value


def _claimable(now: datetime) -> list[ColumnElement[bool]]:
    earlier = aliased(OutboxEvent)
    blocked = exists().where(
        earlier.destination == OutboxEvent.destination,
        earlier.session_id == OutboxEvent.session_id,
        earlier.seq < OutboxEvent.seq,
        earlier.status == PENDING,
    )
    return [
        OutboxEvent.status == PENDING,
        OutboxEvent.next_attempt_at <= now,
        or_(OutboxEvent.claim_expires_at.is_(None), OutboxEvent.claim_expires_at <= now),
        # only the earliest undelivered (pending) event of each (destination, session) is due;
        # delivered and dead events do not hold the session back
        ~blocked,
    ]


async def claim(
    tx: AsyncSession, *, worker: str, now: datetime, lease_seconds: float, limit: int
) -> list[ClaimedEvent]:
    """Lease up to ``limit`` due events to ``worker`` and count the attempt it is about to make."""
    stmt = (
        select(OutboxEvent)
        .where(*_claimable(now))
        .order_by(OutboxEvent.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxEvent)
    )
    rows = (await tx.execute(stmt)).scalars().all()
    expires = now + timedelta(seconds=lease_seconds)
    claimed = []
    for row in rows:
        row.claimed_by = worker
        row.claim_expires_at = expires
        row.attempts += 1
        row.updated_at = now
        claimed.append(
            ClaimedEvent(
                seq=row.seq,
                id=row.id,
                destination=row.destination,
                type=row.type,
                session_id=row.session_id,
                ticket_id=row.ticket_id,
                source_message_id=row.source_message_id,
                data=row.payload,
                created_at=row.created_at,
                attempt=row.attempts,
                round=row.replays,
            )
        )
    await tx.flush()
    return claimed


async def finish(
    tx: AsyncSession,
    event: ClaimedEvent,
    *,
    worker: str,
    now: datetime,
    status: str,
    next_attempt_at: datetime | None,
    last_status: int | None,
    last_error: str | None,
) -> bool:
    """Move a claimed event on; False when the claim was lost (lease expired and re-claimed).

    A success is recorded even after the lease was lost: the receiver has the event. A failure only
    updates the event while this worker still holds this claim.
    """
    conditions = [OutboxEvent.seq == event.seq, OutboxEvent.status == PENDING]
    if status != DELIVERED:
        conditions += [
            OutboxEvent.claimed_by == worker,
            OutboxEvent.attempts == event.attempt,
            OutboxEvent.replays == event.round,
        ]
    values: dict[str, Any] = {
        "status": status,
        "claimed_by": None,
        "claim_expires_at": None,
        "last_status": last_status,
        "last_error": last_error,
        "updated_at": now,
    }
    if status == DELIVERED:
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = await tx.execute(update(OutboxEvent).where(*conditions).values(**values))
    return bool(getattr(result, "rowcount", 0))


def add_attempt(
    tx: AsyncSession,
    event: ClaimedEvent,
    *,
    worker: str,
    now: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    excerpt: str | None,
    outcome: str,
) -> None:
    tx.add(
        OutboxAttempt(
            event_id=event.id,
            round=event.round,
            attempt=event.attempt,
            worker=worker,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            response_excerpt=excerpt,
            outcome=outcome,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class EventFilter:
    status: str | None = None
    destination: str | None = None
    session_id: uuid.UUID | None = None
    type: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.status:
            out.append(OutboxEvent.status == self.status)
        if self.destination:
            out.append(OutboxEvent.destination == self.destination)
        if self.session_id:
            out.append(OutboxEvent.session_id == self.session_id)
        if self.type:
            out.append(OutboxEvent.type == self.type)
        return out


async def list_events(
    tx: AsyncSession, flt: EventFilter, *, offset: int, limit: int
) -> tuple[Sequence[OutboxEvent], int]:
    conditions = flt.conditions()
    total = (await tx.execute(select(func.count()).select_from(OutboxEvent).where(*conditions))).scalar_one()
    stmt = select(OutboxEvent).where(*conditions).order_by(OutboxEvent.seq.desc()).offset(offset).limit(limit)
    return (await tx.execute(stmt)).scalars().all(), int(total)


async def get(tx: AsyncSession, event_id: uuid.UUID) -> OutboxEvent | None:
    return (await tx.execute(select(OutboxEvent).where(OutboxEvent.id == event_id))).scalar_one_or_none()


async def attempts_of(tx: AsyncSession, event_id: uuid.UUID) -> Sequence[OutboxAttempt]:
    stmt = (
        select(OutboxAttempt)
        .where(OutboxAttempt.event_id == event_id)
        .order_by(OutboxAttempt.round, OutboxAttempt.attempt)
    )
    return (await tx.execute(stmt)).scalars().all()


async def replay_dead(tx: AsyncSession, flt: EventFilter, *, now: datetime, ids: Sequence[int] = ()) -> int:
    """Put dead events matching the filter (or exactly the given ``seq`` values) back to pending."""
    conditions = [OutboxEvent.status == DEAD, *flt.conditions()]
    if ids:
        conditions.append(OutboxEvent.seq.in_(list(ids)))
    stmt = (
        update(OutboxEvent)
        .where(and_(*conditions))
        .values(
            status=PENDING,
            attempts=0,
            replays=OutboxEvent.replays + 1,
            next_attempt_at=now,
            claimed_by=None,
            claim_expires_at=None,
            updated_at=now,
        )
    )
    result = await tx.execute(stmt)
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class Depth:
    pending: int
    dead: int
    oldest_pending_created_at: datetime | None


async def depth(tx: AsyncSession) -> Depth:
    pending_stmt = select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.status == PENDING)
    pending, oldest = (await tx.execute(pending_stmt)).one()
    dead = (await tx.execute(select(func.count()).where(OutboxEvent.status == DEAD))).scalar_one()
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return Depth(int(pending), int(dead), oldest)


async def purge_delivered(tx: AsyncSession, *, before: datetime, batch: int = 1000) -> int:
    """Delete up to ``batch`` events delivered before ``before`` (their attempts go by cascade).

    Pending, retrying and dead events are never touched: only a delivered event is finished.
    """
    seqs = (
        (
            await tx.execute(
                select(OutboxEvent.seq)
                .where(OutboxEvent.status == OutboxStatus.DELIVERED.value, OutboxEvent.delivered_at < before)
                .order_by(OutboxEvent.seq)
                .limit(batch)
            )
        )
        .scalars()
        .all()
    )
    if not seqs:
        return 0
    await tx.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_(seqs)))
    return len(seqs)
