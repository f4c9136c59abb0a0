"""``cs_audit_logs``: who changed what, from which state to which."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, JSONType, UTCDateTime, UUIDType, new_id, utcnow


class AuditLog(Base):
    __tablename__ = "cs_audit_logs"
    __table_args__ = (
        Index("ix_cs_audit_logs_object", "object_type", "object_id", "created_at"),
        Index("ix_cs_audit_logs_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # JSON: our transitions store a state name (a JSON string); the original's shape (and the
    # ``message_processed`` rows) an object, e.g. {"intent": ..., "reply": ..., "ticket_id": ...}
    before_state: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after_state: Mapped[Any] = mapped_column(JSONType, nullable=True)
    code: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # the original's columns: always "default", and the caller's address when known
    tenant_id: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    source_ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
