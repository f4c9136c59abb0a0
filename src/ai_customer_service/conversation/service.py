"""Use cases on conversations: close, CSAT feedback, manual handoff, and the inactivity sweep.

Each function is one transaction: the change, its audit row, commit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.conversation import queries
from ai_customer_service.conversation.models import Feedback, MessageDedup, Session
from ai_customer_service.conversation.repository import close_session as mark_closed
from ai_customer_service.conversation.states import SessionStatus
from ai_customer_service.db.batches import delete_in_batches
from ai_customer_service.db.engine import Database
from ai_customer_service.db.locking import for_update
from ai_customer_service.errors import BadRequest, Conflict, NotFound
from ai_customer_service.outbox.publisher import EventPublisher
from ai_customer_service.security import replay
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.ticket import repository as tickets
from ai_customer_service.ticket.states import Priority
from ai_customer_service.values import require_uuid

_SWEEP_BATCH = 500


def parse_session_id(raw: str) -> uuid.UUID:
    """A path's session id; a malformed one names no session (404, like an unknown ticket id)."""
    return require_uuid(raw, "session", "CS_SES_4001")


async def _locked(tx: AsyncSession, session_id: uuid.UUID) -> Session:
    stmt = select(Session).where(Session.id == session_id).with_for_update()
    session = (await tx.execute(stmt)).scalar_one_or_none()
    if session is None:
        raise NotFound("session not found", "CS_SES_4001")
    return session


async def close(
    db: Database, session_id: uuid.UUID, *, actor_id: str, request_id: str | None
) -> dict[str, Any]:
    async with db.transaction() as tx:
        session = await _locked(tx, session_id)
        if session.status == SessionStatus.CLOSED.value:
            raise Conflict("session is already closed", "CS_SES_4091")
        if await tickets.active_for_session(tx, session.id) is not None:
            raise Conflict("session has an open ticket; resolve or close the ticket first", "CS_SES_4092")
        before = mark_closed(session, now=datetime.now(UTC), reason="closed_by_agent")
        audit.record(
            tx,
            object_type="session",
            object_id=session.id,
            action="close",
            actor_type="principal",
            actor_id=actor_id,
            before_state=before,
            after_state=session.status,
            request_id=request_id,
        )
        return queries.session_view(session, None)


async def feedback(
    db: Database,
    session_id: uuid.UUID,
    *,
    score: int,
    comment: str | None,
    request_id: str | None,
    rated_at: datetime | None = None,
    signature: SignatureBinding | None = None,
) -> dict[str, Any]:
    """Store the customer's rating of the session. One rating per session: a newer one replaces the
    previous (audited with both scores). ``rated_at`` is when the customer rated (the signed request's
    timestamp; now when unsigned) and is stored as the row's ``created_at``: the same rating again,
    or one older than the stored rating — e.g. a replayed earlier request — changes nothing and
    writes nothing."""
    if not 1 <= score <= 5:  # the router checks too; the service never trusts its caller
        raise BadRequest("feedback score must be between 1 and 5", "CS_REQ_4009")
    rated_at = rated_at or datetime.now(UTC)
    async with db.transaction() as tx:
        if signature is not None:
            await replay.claim(tx, signature)  # the same signed rating for another session: 403
        session = await _locked(tx, session_id)  # serialises ratings of one session
        row = (
            await tx.execute(select(Feedback).where(Feedback.session_id == session.id))
        ).scalar_one_or_none()
        previous = None if row is None else row.score
        if row is None:
            row = Feedback(
                id=uuid.uuid4(), session_id=session.id, score=score, comment=comment, created_at=rated_at
            )
            tx.add(row)
        elif (row.score, row.comment) == (score, comment) or rated_at < row.created_at:
            return _feedback_view(row)
        else:
            row.score, row.comment, row.created_at = score, comment, rated_at
        audit.record(
            tx,
            object_type="session",
            object_id=session.id,
            action="feedback",
            actor_type="customer",
            actor_id=session.open_id[:64],
            request_id=request_id,
            details={"score": score, **({"previous_score": previous} if previous is not None else {})},
        )
        await tx.flush()
        return _feedback_view(row)


def _feedback_view(row: Feedback) -> dict[str, Any]:
    return {"id": str(row.id), "session_id": str(row.session_id), "score": row.score, "comment": row.comment}


async def handoff(
    db: Database,
    session_id: uuid.UUID,
    *,
    reason: str,
    priority: Priority,
    actor_id: str,
    request_id: str | None,
    events: EventPublisher | None = None,
) -> dict[str, Any]:
    reason = reason.strip()
    if not reason:
        raise BadRequest("handoff reason is required", "CS_REQ_4010")
    async with db.transaction() as tx:
        session = await _locked(tx, session_id)
        if session.status == SessionStatus.CLOSED.value:
            raise Conflict("session is closed", "CS_SES_4091")
        existing = await tickets.active_for_session(tx, session.id)
        if existing is not None:
            raise Conflict("session already has an open ticket", "CS_SES_4093")
        ticket = await tickets.create_for_handoff(
            tx,
            session_id=session.id,
            channel=session.channel,
            open_id=session.open_id,
            reason=reason[:64],
            priority=priority,
            subject=reason[:200],
            context={"manual": True, "requested_by": actor_id},
        )
        before = session.status
        session.status = SessionStatus.HANDOFF.value
        session.updated_at = datetime.now(UTC)
        audit.record(
            tx,
            object_type="session",
            object_id=session.id,
            action="handoff",
            actor_type="principal",
            actor_id=actor_id,
            before_state=before,
            after_state=session.status,
            request_id=request_id,
            details={"ticket_id": str(ticket.id), "reason": reason, "priority": priority.value},
        )
        if events is not None:
            events.publish_handoff(tx, session, ticket, manual=True)
        return {"session": queries.session_view(session, ticket), "ticket_id": str(ticket.id)}


async def sweep_idle(db: Database, *, idle_seconds: int, now: datetime | None = None) -> int:
    """Close sessions quiet for longer than ``idle_seconds`` (not those waiting for a human).

    One conditional UPDATE per batch, so several processes may sweep at once without conflict.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=idle_seconds)
    sweepable = [
        SessionStatus.IDLE.value,
        SessionStatus.PROCESSING.value,
        SessionStatus.WAITING_FEEDBACK.value,
    ]
    async with db.transaction() as tx:
        ids = (
            (
                await tx.execute(
                    select(Session.id)
                    .where(Session.status.in_(sweepable), Session.last_message_at < cutoff)
                    .limit(_SWEEP_BATCH)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return 0
        result = await tx.execute(
            update(Session)
            .where(Session.id.in_(ids), Session.status.in_(sweepable), Session.last_message_at < cutoff)
            .values(status=SessionStatus.CLOSED.value, closed_at=now, updated_at=now, close_reason="timeout")
            .returning(Session.id)
        )
        closed = result.scalars().all()
        for sid in closed:
            audit.record(
                tx,
                object_type="session",
                object_id=sid,
                action="close",
                actor_type="system",
                after_state=SessionStatus.CLOSED.value,
                details={"reason": "timeout"},
            )
        return len(closed)


async def purge_dedup_records(
    db: Database,
    *,
    retention_days: int,
    now: datetime | None = None,
    batch: int = 5000,
    time_budget_seconds: float = 30.0,
) -> int:
    """Delete dedup records older than ``retention_days`` in short transactions of at most ``batch``
    rows, until none is left or ``time_budget_seconds`` have passed (the next run goes on). A retry of
    such an old message is then processed as a new one; upstreams retry within minutes or hours, so a
    few days keep exactly-once for them while the table stays bounded.

    On PostgreSQL each batch skips rows another process is deleting (``FOR UPDATE SKIP LOCKED``), so
    replicas purging at the same time share the work instead of queueing behind each other.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    doomed = for_update(
        select(MessageDedup.id).where(MessageDedup.created_at < cutoff).limit(batch),
        db.dialect,
        skip_locked=True,
    )

    async def delete_batch(tx: AsyncSession) -> int:
        result = await tx.execute(delete(MessageDedup).where(MessageDedup.id.in_(doomed.scalar_subquery())))
        return int(cast(CursorResult[Any], result).rowcount)

    return await delete_in_batches(db, delete_batch, batch=batch, time_budget_seconds=time_budget_seconds)
