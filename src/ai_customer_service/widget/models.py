"""Widget tables: ``cs_widget_sites`` (public site keys and their origins), ``cs_widget_keys`` (the
server-side key that signs visitor tokens, shared by every replica) and ``cs_widget_counters``
(fixed-window rate-limit counters, enforced by the database so replicas agree)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, JSONType, UTCDateTime, UUIDType, new_id, utcnow


class WidgetSite(Base):
    """A website allowed to embed the widget: its public key, allowed origins and limits."""

    __tablename__ = "cs_widget_sites"
    __table_args__ = (
        Index("uq_cs_widget_sites_public_key", "public_key", unique=True),
        Index("uq_cs_widget_sites_name", "name", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(40))
    origins: Mapped[list[str]] = mapped_column(JSONType)
    # HMAC key the host site signs its signed-in user's id with; server-side only, never sent out
    identity_secret: Mapped[str | None] = mapped_column(String(128))
    # messages per minute for the whole site, and new visitors per minute (0: unlimited)
    rate_limit_messages: Mapped[int] = mapped_column(Integer, default=600)
    rate_limit_visitors: Mapped[int] = mapped_column(Integer, default=120)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WidgetKey(Base):
    """The key visitor tokens are signed with when ``AI_CS_WIDGET_TOKEN_SECRET`` is not set."""

    __tablename__ = "cs_widget_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WidgetCounter(Base):
    """How many requests of one kind a key made in one fixed window."""

    __tablename__ = "cs_widget_counters"
    __table_args__ = (
        UniqueConstraint("key", "window_start"),
        Index("ix_cs_widget_counters_window_start", "window_start"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(160))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
