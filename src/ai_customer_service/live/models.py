"""``cs_live_events``: every conversation and ticket event, kept briefly for the live streams.

One row per event, written in the transaction of the change that caused it (or, for an ephemeral
event such as "typing", in a short transaction of its own). ``seq`` is an auto-incrementing BIGINT
(``BIGSERIAL`` on PostgreSQL, an ``AUTOINCREMENT`` rowid on SQLite): the order of the stream and the
``id`` of each server-sent event, so a client resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, JSONType, UTCDateTime, UUIDType, utcnow

SeqType = BigInteger().with_variant(Integer(), "sqlite")


class LiveEventRow(Base):
    __tablename__ = "cs_live_events"
    __table_args__ = (
        # a widget's stream replays one session's events after its Last-Event-ID
        Index("ix_cs_live_events_session_seq", "session_id", "seq"),
        Index("ix_cs_live_events_created_at", "created_at"),  # the retention purge
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
