"""``cs_platform_outbox`` (one row per event and destination) and ``cs_platform_outbox_attempts``.

``seq`` is the primary key: an auto-incrementing BIGINT (``BIGSERIAL`` on PostgreSQL, an
``AUTOINCREMENT`` rowid on SQLite, so values are never reused) that orders the events of a session.
``id`` is the event's UUID, the one receivers deduplicate on; every API and log names events by it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

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
from ai_customer_service.outbox.events import EventType

SeqType = BigInteger().with_variant(Integer(), "sqlite")


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt or a retry (possibly claimed right now)
    DELIVERED = "delivered"  # a 2xx answer was received
    DEAD = "dead"  # out of retries; replay puts it back to pending


class OutboxEvent(Base):
    __tablename__ = "cs_platform_outbox"
    __table_args__ = (
        enum_check("status", enum_values(OutboxStatus), "status"),
        enum_check("type", enum_values(EventType), "type"),
        UniqueConstraint("id"),
        # the claim query: due pending events
        Index("ix_cs_platform_outbox_due", "status", "next_attempt_at"),
        # per-session ordering: "is there an earlier pending event of this session?"
        Index("ix_cs_platform_outbox_session", "destination", "session_id", "seq"),
        # the claim reads only pending events, oldest first: without it PostgreSQL may walk the
        # primary key through every delivered event kept for the retention period (100 ms per
        # claim with 300,000 of them)
        Index(
            "ix_cs_platform_outbox_pending",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(UUIDType, default=new_id)
    destination: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType)
    source_message_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # in the current round
    replays: Mapped[int] = mapped_column(Integer, default=0)  # rounds started by a replay
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxAttempt(Base):
    """One delivery attempt: HTTP status or error class, duration, the first 2 KB of the answer."""

    __tablename__ = "cs_platform_outbox_attempts"
    __table_args__ = (UniqueConstraint("event_id", "round", "attempt"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("cs_platform_outbox.id", ondelete="CASCADE")
    )
    round: Mapped[int] = mapped_column(Integer, default=0)  # the event's replays when attempted
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float] = mapped_column(Float)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
