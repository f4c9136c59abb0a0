"""``cs_principals``: back-office users and their hashed API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, UTCDateTime, UUIDType, enum_check, enum_values, new_id, utcnow


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Principal(Base):
    __tablename__ = "cs_principals"
    __table_args__ = (
        enum_check("role", enum_values(Role), "role"),
        Index("uq_cs_principals_token_hash", "token_hash", unique=True),
        Index("uq_cs_principals_name", "name", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    token_prefix: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # console sign-in (migration 0011): an argon2id hash, NULL while the principal has no password
    password_hash: Mapped[str | None] = mapped_column(String(255))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    sign_in_blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in browser of the agent console; only the SHA-256 of its cookie token is stored."""

    __tablename__ = "cs_console_sessions"
    __table_args__ = (
        Index("uq_cs_console_sessions_token_hash", "token_hash", unique=True),
        Index("ix_cs_console_sessions_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64))
    principal_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("cs_principals.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(200))
