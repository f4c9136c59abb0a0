"""Knowledge-base tables: ``cs_kb_entries`` and the embedding cache ``cs_kb_embeddings``."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, LargeBinary, String, Text
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


class EntryStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class KBEntry(Base):
    """One answerable topic: a Markdown answer and the questions customers ask about it."""

    __tablename__ = "cs_kb_entries"
    __table_args__ = (
        enum_check("status", enum_values(EntryStatus), "status"),
        Index("uq_cs_kb_entries_key", "key", unique=True),
        Index("uq_cs_kb_entries_title", "title", unique=True),
        Index("ix_cs_kb_entries_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    locale: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=EntryStatus.DRAFT.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KBEmbedding(Base):
    """Cached embedding vectors keyed by model and the hash of the exact text embedded."""

    __tablename__ = "cs_kb_embeddings"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
