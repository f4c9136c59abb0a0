"""Conversation tables: ``cs_sessions``, ``cs_messages``, ``cs_message_dedup``, ``cs_feedback``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.conversation.states import AuthorType, Direction, SessionStatus
from ai_customer_service.db.base import (
    Base,
    JSONType,
    UTCDateTime,
    UUIDType,
    enum_check,
    enum_values,
    new_id,
    utcnow,
)


class Session(Base):
    """The conversation of one customer ``(channel, open_id)`` through one source (the generic webhook
    or one platform adapter); at most one per ``(channel, open_id, source)`` is not closed."""

    __tablename__ = "cs_sessions"
    __table_args__ = (
        enum_check("status", enum_values(SessionStatus), "status"),
        # at most one non-closed session per customer and source, enforced by the database: a
        # conversation belongs to the source that started it (docs/security.md, "Sources")
        Index(
            "uq_cs_sessions_open_customer",
            "channel",
            "open_id",
            "source",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_cs_sessions_status_last_message_at", "status", "last_message_at"),
        # every session of one customer, closed ones too (the widget's history)
        Index("ix_cs_sessions_channel_open_id", "channel", "open_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(32))
    open_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(64))
    # the platform adapter the conversation came through (None: the generic webhook)
    platform: Mapped[str | None] = mapped_column(String(64))
    # the source that started the conversation, part of its identity: "" for the generic webhook,
    # else the platform's name (always ``platform or ""``; never changes)
    source: Mapped[str] = mapped_column(String(64), default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), default=SessionStatus.IDLE.value)
    low_confidence_streak: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(32))


class Message(Base):
    """Every inbound and outbound message of a session, with the bot's decision record."""

    __tablename__ = "cs_messages"
    __table_args__ = (
        enum_check("direction", enum_values(Direction), "direction"),
        enum_check("author_type", enum_values(AuthorType), "author_type"),
        Index("ix_cs_messages_session_id_created_at", "session_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("cs_sessions.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(10))
    author_type: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[str | None] = mapped_column(String(64))
    channel_message_id: Mapped[str | None] = mapped_column(String(128))
    content: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(32), default="text")
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_to: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the bot's decision (outbound bot messages)
    intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageDedup(Base):
    """One row per processed ``(source, channel, message_id)``; holds the original response."""

    __tablename__ = "cs_message_dedup"
    __table_args__ = (
        UniqueConstraint("source", "channel", "message_id"),
        Index("ix_cs_message_dedup_created_at", "created_at"),  # the retention purge
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # when a ``message.deduplicated`` event last went out for a duplicate of this message (at most
    # one per AI_CS_DEDUP_EVENT_WINDOW_SECONDS)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Feedback(Base):
    """A customer's CSAT rating of a session: one per session, a new rating replaces it."""

    __tablename__ = "cs_feedback"
    __table_args__ = (
        CheckConstraint("score BETWEEN 1 AND 5", name="score"),
        Index("ix_cs_feedback_session_id", "session_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("cs_sessions.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
