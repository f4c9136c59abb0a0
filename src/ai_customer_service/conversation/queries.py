"""Reads for the conversation API (plain queries, no locking, no writes)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.db.base import UTCDateTime, UUIDType
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import NotFound

# The one thing a conversation shows of its tickets: the id of its latest. Named by table, not by
# the ticket package's model: ``ticket`` builds on ``conversation``, never the other way round.
_tickets = table(
    "cs_tickets", column("id", UUIDType), column("session_id", UUIDType), column("created_at", UTCDateTime)
)


def session_view(session: Session, ticket_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "channel": session.channel,
        "open_id": session.open_id,
        "user_id": session.user_id,
        "status": session.status,
        "low_confidence_streak": session.low_confidence_streak,
        "ticket_id": str(ticket_id) if ticket_id else None,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "last_message_at": session.last_message_at.isoformat(),
        "closed_at": session.closed_at.isoformat() if session.closed_at else None,
        "close_reason": session.close_reason,
    }


def message_view(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "session_id": str(message.session_id),
        "direction": message.direction,
        "author_type": message.author_type,
        "author_id": message.author_id,
        "content": message.content,
        "content_type": message.content_type,
        "channel_message_id": message.channel_message_id,
        "truncated": message.truncated,
        "reply_to": message.reply_to,
        "intent": message.intent,
        "confidence": message.confidence,
        "citations": message.citations or [],
        "decision": message.decision,
        "latency_ms": message.latency_ms,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "created_at": message.created_at.isoformat(),
    }


async def get_session(tx: AsyncSession, session_id: uuid.UUID) -> Session:
    session = await tx.get(Session, session_id)
    if session is None:
        raise NotFound("session not found", "CS_SES_4001")
    return session


async def latest_ticket_id(tx: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    stmt = (
        select(_tickets.c.id)
        .where(_tickets.c.session_id == session_id)
        .order_by(_tickets.c.created_at.desc())
        .limit(1)
    )
    return (await tx.execute(stmt)).scalar_one_or_none()


async def session_detail(tx: AsyncSession, session_id: uuid.UUID) -> dict[str, Any]:
    session = await get_session(tx, session_id)
    return session_view(session, await latest_ticket_id(tx, session_id))


async def list_messages(
    tx: AsyncSession, session_id: uuid.UUID, *, page: int, page_size: int
) -> dict[str, Any]:
    await get_session(tx, session_id)
    total = (await tx.execute(select(func.count()).where(Message.session_id == session_id))).scalar_one()
    stmt = (
        select(Message)
        .where(Message.session_id == session_id)
        .order_by(Message.created_at, Message.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [message_view(m) for m in (await tx.execute(stmt)).scalars()]
    return {"items": items, "total": int(total), "page": page, "page_size": page_size}


# --- on a read-only session of their own (for routers) ----------------------------------------------


async def read_session(db: Database, session_id: uuid.UUID) -> dict[str, Any]:
    async with db.reader() as tx:
        return await session_detail(tx, session_id)


async def read_messages(db: Database, session_id: uuid.UUID, *, page: int, page_size: int) -> dict[str, Any]:
    async with db.reader() as tx:
        return await list_messages(tx, session_id, page=page, page_size=page_size)


async def require_session(db: Database, session_id: uuid.UUID) -> None:
    """404 ``CS_SES_4001`` unless the session exists."""
    async with db.reader() as tx:
        await get_session(tx, session_id)
