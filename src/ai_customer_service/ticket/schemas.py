"""Request and response bodies of the ticket API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from ai_customer_service.conversation.models import Message
from ai_customer_service.conversation.schemas import SessionOut
from ai_customer_service.pagination import Page
from ai_customer_service.ticket.models import Ticket, TicketNote
from ai_customer_service.ticket.states import Priority
from ai_customer_service.wire import RequestModel, Timestamp


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
    created_at: Timestamp
    updated_at: Timestamp
    first_assigned_at: Timestamp | None
    first_agent_reply_at: Timestamp | None
    resolved_at: Timestamp | None
    closed_at: Timestamp | None

    @classmethod
    def of(cls, t: Ticket) -> TicketOut:
        return cls.model_validate(t, from_attributes=True)


class TicketList(Page[TicketOut]):
    """One page of tickets, by priority then age."""


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: str
    author_type: str
    author_id: str | None
    content: str
    content_type: str
    intent: str | None
    confidence: float | None
    created_at: Timestamp

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls.model_validate(m, from_attributes=True)


class NoteOut(BaseModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    created_at: Timestamp

    @classmethod
    def of(cls, n: TicketNote) -> NoteOut:
        return cls.model_validate(n, from_attributes=True)


class TicketDetailOut(TicketOut):
    messages: list[MessageOut] = Field(description="The customer conversation, oldest first.")
    notes: list[NoteOut] = Field(description="Private notes; never shown to the customer.")


class ReplyOut(BaseModel):
    ticket: TicketOut
    message: MessageOut


class DurationSummary(BaseModel):
    """Seconds from ticket creation: how many, mean, p50, p90 (null without values)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None


class Csat(BaseModel):
    average: float | None
    count: int


class TicketStats(BaseModel):
    total: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_channel: dict[str, int]
    handoffs_by_reason: dict[str, int]
    time_to_first_assignment_seconds: DurationSummary
    time_to_first_agent_reply_seconds: DurationSummary
    time_to_resolution_seconds: DurationSummary
    csat: Csat


class HandoffRequest(RequestModel):
    """``POST /sessions/{id}/handoff``: staff hand a conversation to a human."""

    reason: str = Field(default="", max_length=500)
    priority: Priority = Priority.P2


class HandoffOut(BaseModel):
    session: SessionOut
    ticket_id: str
