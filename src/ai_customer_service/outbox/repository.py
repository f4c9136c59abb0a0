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

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ai_customer_service.db.base import new_id
from ai_customer_service.outbox.delivery import ClaimedEvent
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent, OutboxStatus

PENDING = OutboxStatus.PENDING.value
DELIVERED = OutboxStatus.DELIVERED.value
DEAD = OutboxStatus.DEAD.value


def _heads(destinations: Sequence[str] | None) -> Select[int]:
    """The ``seq`` of the earliest pending event of every (destination, session).

    One pass over the pending rows, computed once per claim. (A per-row "is there an earlier pending
    event of this session?" check was planned as a nested loop over every pending row when the
    table's statistics were stale, as they are right after a burst: 1.6 s per claim with 4,200
    pending events, growing with the square of the backlog.)
    """
    earlier = aliased(OutboxEvent)
    stmt = select(func.min(earlier.seq)).where(earlier.status == PENDING, earlier.session_id.is_not(None))
    if destinations is not None:
        stmt = stmt.where(earlier.destination.in_(list(destinations)))
    return stmt.group_by(earlier.destination, earlier.session_id)


def _claimable(now: datetime, destinations: Sequence[str] | None = None) -> list[ColumnElement[bool]]:
    conditions = [
        OutboxEvent.status == PENDING,
        OutboxEvent.next_attempt_at <= now,
        or_(OutboxEvent.claim_expires_at.is_(None), OutboxEvent.claim_expires_at <= now),
        # only the earliest undelivered (pending) event of each (destination, session) is due;
        # delivered and dead events do not hold the session back; an event without a session is
        # its own head
        or_(OutboxEvent.session_id.is_(None), OutboxEvent.seq.in_(_heads(destinations))),
    ]
    if destinations is not None:
        # a worker only ever touches events it can deliver: another replica's destinations are left
        # alone (never claimed, failed or dead-lettered here)
        conditions.append(OutboxEvent.destination.in_(list(destinations)))
    return conditions


_CLAIM_COLUMNS = (
    "seq",
    "id",
    "destination",
    "type",
    "session_id",
    "ticket_id",
    "source_message_id",
    "payload",
    "created_at",
    "attempts",
    "replays",
    "next_attempt_at",
    "claim_expires_at",
)


def _table() -> Table:
    """Core, not the ORM, for the worker's bulk statements: no identity map or unit of work to keep."""
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table


def _is_free(row: RowMapping, now: datetime) -> bool:
    expires = row["claim_expires_at"]
    return bool(row["next_attempt_at"] <= now and (expires is None or expires <= now))


async def claim(
    tx: AsyncSession,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    destinations: Sequence[str] | None = None,
    per_session: int = 1,
) -> list[ClaimedEvent]:
    """Lease due events to ``worker`` and count the attempt it is about to make.

    Up to ``limit`` *heads* — the earliest pending event of a (destination, session), or an event
    without a session — and, behind each head, up to ``per_session - 1`` of the session's next
    pending events (a *run*, returned in ``seq`` order right after its head). A run is contiguous:
    it stops before the first event that is not due or is leased to someone else, so the worker can
    deliver it in order. Nobody else can claim a run's later events while its head is pending.
    ``destinations`` (None: any) limits the claim to the destinations this worker knows.
    """
    table = _table()
    columns = [table.c[name] for name in _CLAIM_COLUMNS]
    stmt = (
        select(*columns)
        .where(*_claimable(now, destinations))
        .order_by(table.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=table)
    )
    heads = list((await tx.execute(stmt)).mappings().all())
    runs: dict[tuple[str, uuid.UUID], list[RowMapping]] = {
        (h["destination"], h["session_id"]): [h] for h in heads if h["session_id"] is not None
    }
    if per_session > 1 and runs:
        rank = (
            func.row_number()
            .over(partition_by=(table.c.destination, table.c.session_id), order_by=table.c.seq)
            .label("rank")
        )
        ranked = (
            select(table.c.seq, rank)
            .where(
                table.c.status == PENDING,
                table.c.session_id.in_([sid for _, sid in runs]),
                table.c.destination.in_({dest for dest, _ in runs}),
            )
            .subquery()
        )
        followers_stmt = (
            select(*columns)
            .where(table.c.seq.in_(select(ranked.c.seq).where(ranked.c.rank <= per_session)))
            .order_by(table.c.seq)
            .with_for_update(of=table)
        )
        stopped: set[tuple[str, uuid.UUID]] = set()
        for row in (await tx.execute(followers_stmt)).mappings().all():
            key = (row["destination"], row["session_id"])
            run = runs.get(key)
            if run is None or key in stopped or row["seq"] <= run[0]["seq"]:
                continue
            if not _is_free(row, now):
                stopped.add(key)
                continue
            run.append(row)
    ordered: list[RowMapping] = []
    for head in heads:
        key = (head["destination"], head["session_id"])
        ordered += runs.get(key, [head]) if head["session_id"] else [head]
    if not ordered:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    # one statement for the lot: the rows are locked, so each one's attempt is its count plus one
    await tx.execute(
        update(table)
        .where(table.c.seq.in_([row["seq"] for row in ordered]))
        .values(claimed_by=worker, claim_expires_at=expires, attempts=table.c.attempts + 1, updated_at=now)
    )
    return [
        ClaimedEvent(
            seq=row["seq"],
            id=row["id"],
            destination=row["destination"],
            type=row["type"],
            session_id=row["session_id"],
            ticket_id=row["ticket_id"],
            source_message_id=row["source_message_id"],
            data=row["payload"],
            created_at=row["created_at"],
            attempt=row["attempts"] + 1,
            round=row["replays"],
            lease_expires_at=expires,
        )
        for row in ordered
    ]


async def release(tx: AsyncSession, events: Sequence[ClaimedEvent], *, worker: str, now: datetime) -> int:
    """Give back claimed events this worker did not attempt (their attempt is not counted)."""
    released = 0
    groups: dict[tuple[int, int], list[int]] = {}
    for event in events:
        groups.setdefault((event.attempt, event.round), []).append(event.seq)
    for (attempt, round_), seqs in groups.items():
        result = await tx.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.seq.in_(seqs),
                OutboxEvent.status == PENDING,
                OutboxEvent.claimed_by == worker,
                OutboxEvent.attempts == attempt,
                OutboxEvent.replays == round_,
            )
            .values(claimed_by=None, claim_expires_at=None, attempts=attempt - 1, updated_at=now)
        )
        released += int(getattr(result, "rowcount", 0))
    return released


async def mark_delivered(
    tx: AsyncSession, events: Sequence[tuple[ClaimedEvent, int]], *, now: datetime
) -> set[int]:
    """Mark acknowledged events delivered (``(event, http status)`` pairs), a few statements for the
    lot; returns the ``seq`` of those that were still pending (the others were already finished by
    another worker after this one's lease expired: ``lost_lease``)."""
    by_status: dict[int, list[int]] = {}
    for event, status_code in events:
        by_status.setdefault(status_code, []).append(event.seq)
    done: set[int] = set()
    table = _table()
    for status_code, seqs in by_status.items():
        result = await tx.execute(
            update(table)
            .where(table.c.seq.in_(seqs), table.c.status == PENDING)
            .values(
                status=DELIVERED,
                claimed_by=None,
                claim_expires_at=None,
                last_status=status_code,
                last_error=None,
                updated_at=now,
                delivered_at=now,
            )
            .returning(table.c.seq)
        )
        done.update(result.scalars().all())
    return done


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


@dataclass(frozen=True)
class AttemptRecord:
    """One delivery attempt to write to ``cs_platform_outbox_attempts``."""

    event: ClaimedEvent
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    excerpt: str | None
    outcome: str


async def add_attempts(tx: AsyncSession, records: Sequence[AttemptRecord], *, worker: str) -> None:
    """Write many attempts in one statement."""
    if not records:
        return
    table = OutboxAttempt.__table__
    assert isinstance(table, Table)
    await tx.execute(
        insert(table),
        [
            {
                "id": new_id(),
                "event_id": r.event.id,
                "round": r.event.round,
                "attempt": r.event.attempt,
                "worker": worker,
                "status_code": r.status_code,
                "error": r.error,
                "duration_ms": r.duration_ms,
                "response_excerpt": r.excerpt,
                "outcome": r.outcome,
                "created_at": r.at,
            }
            for r in records
        ],
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


async def pending_elsewhere(tx: AsyncSession, known: Sequence[str]) -> dict[str, int]:
    """Pending events per destination that is not in ``known`` (another replica's configuration)."""
    stmt = select(OutboxEvent.destination, func.count()).where(OutboxEvent.status == PENDING)
    if known:
        stmt = stmt.where(OutboxEvent.destination.not_in(list(known)))
    rows = (await tx.execute(stmt.group_by(OutboxEvent.destination))).all()
    return {str(destination): int(count) for destination, count in rows}


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
