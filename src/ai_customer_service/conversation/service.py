"""Use cases on conversations: CSAT feedback, the inactivity sweep and the dedup retention.

Each function is one transaction: the change, its audit row, commit. Closing a conversation and
handing it to a human involve its tickets: they are ticket use cases (``ticket.service``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.conversation import repository
from ai_customer_service.conversation.models import Feedback, MessageDedup
from ai_customer_service.conversation.states import SessionStatus
from ai_customer_service.db.batches import delete_in_batches
from ai_customer_service.db.engine import Database
from ai_customer_service.db.locking import for_update
from ai_customer_service.errors import BadRequest
from ai_customer_service.security import replay
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.uow import Store
from ai_customer_service.values import require_uuid

_SWEEP_BATCH = 500


def parse_session_id(raw: str) -> uuid.UUID:
    """A path's session id; a malformed one names no session (404, like an unknown ticket id)."""
    return require_uuid(raw, "session", "CS_SES_4001")


async def feedback(
    store: Store,
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
    async with store.begin() as uow:
        tx = uow.tx
        if signature is not None:
            await replay.claim(tx, signature)  # the same signed rating for another session: 403
        session = await repository.lock_session(tx, session_id)  # serialises ratings of one session
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
        uow.audit(
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


async def sweep_idle(store: Store, *, idle_seconds: int, now: datetime | None = None) -> int:
    """Close sessions the bot owns that have been quiet for longer than ``idle_seconds`` (not those
    waiting for a human), one batch, one audit row each.

    One conditional UPDATE per batch, so several processes may sweep at once without conflict.
    """
    now = now or datetime.now(UTC)
    async with store.begin() as uow:
        closed = await repository.close_idle(
            uow.tx, cutoff=now - timedelta(seconds=idle_seconds), now=now, limit=_SWEEP_BATCH
        )
        for sid in closed:
            uow.audit(
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
