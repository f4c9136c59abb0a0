"""Writes and locked reads of sessions and messages, inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.conversation.models import Message, MessageDedup, Session
from ai_customer_service.conversation.states import AuthorType, Direction, SessionStatus
from ai_customer_service.db.statements import insert_ignore


async def lock_open_session(tx: AsyncSession, channel: str, open_id: str) -> Session | None:
    """The customer's non-closed session, locked for this transaction (FOR UPDATE on PostgreSQL)."""
    stmt = (
        select(Session)
        .where(
            Session.channel == channel,
            Session.open_id == open_id,
            Session.status != SessionStatus.CLOSED.value,
        )
        .with_for_update()
    )
    return (await tx.execute(stmt)).scalar_one_or_none()


async def open_session(
    tx: AsyncSession,
    *,
    channel: str,
    open_id: str,
    user_id: str | None,
    now: datetime,
    platform: str | None = None,
) -> Session:
    """Find or create the customer's one non-closed session, locked; safe under concurrency.

    The partial unique index ``uq_cs_sessions_open_customer`` makes concurrent creators converge on
    one row: the losers' inserts do nothing and they lock the winner's row.
    """
    session = await lock_open_session(tx, channel, open_id)
    if session is None:
        await insert_ignore(
            tx,
            Session.__table__,  # type: ignore[arg-type]
            {
                "id": uuid.uuid4(),
                "channel": channel,
                "open_id": open_id,
                "user_id": user_id,
                "platform": platform,
                "status": SessionStatus.IDLE.value,
                "low_confidence_streak": 0,
                "created_at": now,
                "updated_at": now,
                "last_message_at": now,
            },
            index_elements=["channel", "open_id"],
            index_where=text("status <> 'closed'"),
        )
        session = await lock_open_session(tx, channel, open_id)
        if session is None:  # pragma: no cover - the insert or a concurrent one must be visible
            raise RuntimeError("open session vanished after insert")
    if user_id and session.user_id != user_id:
        session.user_id = user_id
    if platform and session.platform != platform:
        # the customer now writes through a platform: that platform gets the conversation's events
        session.platform = platform
    return session


def close_session(session: Session, *, now: datetime, reason: str) -> str:
    before = session.status
    session.status = SessionStatus.CLOSED.value
    session.closed_at = now
    session.close_reason = reason
    session.updated_at = now
    return before


def add_message(
    tx: AsyncSession,
    *,
    session_id: uuid.UUID,
    direction: Direction,
    author_type: AuthorType,
    content: str,
    now: datetime,
    **fields: Any,
) -> Message:
    message = Message(
        id=uuid.uuid4(),
        session_id=session_id,
        direction=direction.value,
        author_type=author_type.value,
        content=content,
        created_at=now,
        **fields,
    )
    tx.add(message)
    return message


async def recent_inbound(
    tx: AsyncSession, session_id: uuid.UUID, since: datetime
) -> tuple[int, datetime | None]:
    """How many customer messages the session received since ``since``, and the oldest of them."""
    stmt = select(func.count(), func.min(Message.created_at)).where(
        Message.session_id == session_id,
        Message.direction == Direction.INBOUND.value,
        Message.created_at > since,
    )
    count, oldest = (await tx.execute(stmt)).one()
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest


def add_dedup(
    tx: AsyncSession,
    *,
    source: str,
    channel: str,
    message_id: str,
    session_id: uuid.UUID,
    response: dict[str, Any],
    now: datetime,
) -> None:
    """Record a processed ``(source, channel, message_id)`` with its response (unique key)."""
    tx.add(
        MessageDedup(
            id=uuid.uuid4(),
            source=source,
            channel=channel,
            message_id=message_id,
            session_id=session_id,
            response=response,
            created_at=now,
        )
    )


async def dedup_response(
    tx: AsyncSession, *, source: str, channel: str, message_id: str
) -> dict[str, Any] | None:
    stmt = select(MessageDedup.response).where(
        MessageDedup.source == source, MessageDedup.channel == channel, MessageDedup.message_id == message_id
    )
    return (await tx.execute(stmt)).scalar_one_or_none()
