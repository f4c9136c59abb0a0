"""Tables of the ticket domain: ``cs_tickets`` and ``cs_ticket_notes``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
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
from ai_customer_service.ticket.states import Priority, TicketStatus

_ACTIVE = "status IN ('open', 'assigned', 'processing')"
# the same predicate as literal SQL for queries, so the partial indexes below can serve them
ACTIVE_SQL = "cs_tickets.status IN ('open', 'assigned', 'processing')"


class Ticket(Base):
    __tablename__ = "cs_tickets"
    __table_args__ = (
        enum_check("status", enum_values(TicketStatus), "status"),
        enum_check("priority", enum_values(Priority), "priority"),
        # at most one ticket that still needs a human per session
        Index(
            "uq_cs_tickets_active_session",
            "session_id",
            unique=True,
            postgresql_where=text(_ACTIVE),
            sqlite_where=text(_ACTIVE),
        ),
        Index("ix_cs_tickets_status_priority_created_at", "status", "priority", "created_at"),
        # the agent console's inbox: active tickets in priority, then age, order (migration 0011)
        Index(
            "ix_cs_tickets_inbox",
            "priority",
            "created_at",
            "id",
            postgresql_where=text(_ACTIVE),
            sqlite_where=text(_ACTIVE),
        ),
        Index("ix_cs_tickets_assignee_id_status", "assignee_id", "status"),
        # a session's latest ticket, looked up for every customer message (reopen check)
        Index("ix_cs_tickets_session_id_created_at", "session_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("cs_sessions.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    open_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN.value)
    priority: Mapped[str] = mapped_column(String(2), default=Priority.P2.value)
    reason: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, ForeignKey("cs_principals.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketNote(Base):
    """A private note on a ticket, never shown to the customer."""

    __tablename__ = "cs_ticket_notes"
    __table_args__ = (Index("ix_cs_ticket_notes_ticket_id", "ticket_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("cs_tickets.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, ForeignKey("cs_principals.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
