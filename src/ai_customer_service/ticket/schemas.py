"""Request and response bodies of the ticket API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from ai_customer_service.conversation.models import Message
from ai_customer_service.http.validation import RequestModel
from ai_customer_service.ticket.models import Ticket, TicketNote


class AssignBody(RequestModel):
    # a principal's id, or its name (in trusted-header mode: the gateway's actor id, e.g. li.lei)
    agent_id: uuid.UUID | Annotated[str, Field(min_length=1, max_length=64)] | None = None


class ResolveBody(RequestModel):
    resolution: str | None = Field(default=None, max_length=4000)


class ReplyBody(RequestModel):
    content: str = Field(min_length=1, max_length=4000)


class NoteBody(RequestModel):
    body: str = Field(min_length=1, max_length=10000)


class TicketOut(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    channel: str
    open_id: str
    status: str
    priority: str
    reason: str
    subject: str
    context: dict[str, Any] | None
    assignee_id: uuid.UUID | None
    resolution: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    first_assigned_at: datetime | None
    first_agent_reply_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, t: Ticket) -> TicketOut:
        return cls.model_validate(t, from_attributes=True)


class TicketList(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    page_size: int


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: str
    author_type: str
    author_id: str | None
    content: str
    content_type: str
    intent: str | None
    confidence: float | None
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls.model_validate(m, from_attributes=True)


class NoteOut(BaseModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    created_at: datetime

    @classmethod
    def of(cls, n: TicketNote) -> NoteOut:
        return cls.model_validate(n, from_attributes=True)


class TicketDetailOut(TicketOut):
    messages: list[MessageOut] = Field(description="The customer conversation, oldest first.")
    notes: list[NoteOut] = Field(description="Private notes; never shown to the customer.")


class ReplyOut(BaseModel):
    ticket: TicketOut
    message: MessageOut
