"""Operations on the outbox: list, inspect, replay dead letters. Each call is one unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from ai_customer_service.audit import repository as audit
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.batches import delete_in_batches
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import OUTBOX_EVENT_NOT_FOUND, OUTBOX_NOT_DEAD, Conflict, NotFound
from ai_customer_service.outbox import repository
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent, OutboxStatus
from ai_customer_service.outbox.repository import EventFilter
from ai_customer_service.pagination import Page, offset
from ai_customer_service.values import rfc3339

EVENT_NOT_FOUND = OUTBOX_EVENT_NOT_FOUND
NOT_DEAD = OUTBOX_NOT_DEAD


def _iso(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def event_view(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "seq": event.seq,
        "destination": event.destination,
        "type": event.type,
        "status": event.status,
        "session_id": None if event.session_id is None else str(event.session_id),
        "ticket_id": None if event.ticket_id is None else str(event.ticket_id),
        "source_message_id": event.source_message_id,
        "attempts": event.attempts,
        "replays": event.replays,
        "next_attempt_at": _iso(event.next_attempt_at),
        "claimed_by": event.claimed_by,
        "claim_expires_at": _iso(event.claim_expires_at),
        "last_status": event.last_status,
        "last_error": event.last_error,
        "created_at": _iso(event.created_at),
        "delivered_at": _iso(event.delivered_at),
        "data": event.payload,
    }


def attempt_view(attempt: OutboxAttempt) -> dict[str, Any]:
    return {
        "round": attempt.round,
        "attempt": attempt.attempt,
        "worker": attempt.worker,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "outcome": attempt.outcome,
        "duration_ms": attempt.duration_ms,
        "response_excerpt": attempt.response_excerpt,
        "created_at": _iso(attempt.created_at),
    }


async def list_events(db: Database, flt: EventFilter, *, page: int, page_size: int) -> Page[dict[str, Any]]:
    async with db.reader() as tx:
        rows, total = await repository.list_events(tx, flt, offset=offset(page, page_size), limit=page_size)
        items = [event_view(r) for r in rows]
        return Page[dict[str, Any]](items=items, total=total, page=page, page_size=page_size)


async def get_event(db: Database, event_id: uuid.UUID) -> dict[str, Any]:
    async with db.reader() as tx:
        event = await repository.get(tx, event_id)
        if event is None:
            raise NotFound("outbox event not found", EVENT_NOT_FOUND)
        view = event_view(event)
        view["attempt_log"] = [attempt_view(a) for a in await repository.attempts_of(tx, event_id)]
        return view


async def replay_one(
    db: Database, event_id: uuid.UUID, *, actor_id: object, request_id: str | None = None
) -> dict[str, Any]:
    async with db.transaction() as tx:
        event = await repository.get(tx, event_id)
        if event is None:
            raise NotFound("outbox event not found", EVENT_NOT_FOUND)
        if event.status != OutboxStatus.DEAD.value:
            raise Conflict(f"only dead events can be replayed (this one is {event.status})", NOT_DEAD)
        await repository.replay_dead(tx, EventFilter(), now=utcnow(), ids=[event.seq])
        audit.record(
            tx,
            object_type="outbox_event",
            object_id=event.id,
            action="outbox_replay",
            actor_type="principal",
            actor_id=actor_id,
            before_state=OutboxStatus.DEAD.value,
            after_state=OutboxStatus.PENDING.value,
            request_id=request_id,
        )
        await tx.flush()
        await tx.refresh(event)
        return event_view(event)


async def replay_matching(
    db: Database, flt: EventFilter, *, actor_id: object, request_id: str | None = None
) -> dict[str, Any]:
    async with db.transaction() as tx:
        count = await repository.replay_dead(tx, flt, now=utcnow())
        audit.record(
            tx,
            object_type="outbox",
            object_id="dead-letters",
            action="outbox_replay_bulk",
            actor_type="principal",
            actor_id=actor_id,
            before_state=OutboxStatus.DEAD.value,
            after_state=OutboxStatus.PENDING.value,
            request_id=request_id,
            details={
                "replayed": count,
                "destination": flt.destination,
                "session_id": None if flt.session_id is None else str(flt.session_id),
                "type": flt.type,
            },
        )
        return {"replayed": count}


async def purge_delivered(
    db: Database, *, retention_days: int, batch: int = 5000, time_budget_seconds: float = 30.0
) -> int:
    """Delete delivered events (and their attempts) older than ``retention_days``, in short
    transactions of at most ``batch`` rows so a large backlog never holds locks for long, until none
    is left or ``time_budget_seconds`` have passed (the next run goes on)."""
    before = utcnow() - timedelta(days=retention_days)
    return await delete_in_batches(
        db,
        lambda tx: repository.purge_delivered(tx, before=before, batch=batch),
        batch=batch,
        time_budget_seconds=time_budget_seconds,
    )
