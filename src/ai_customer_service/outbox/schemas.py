"""Request and response bodies of the outbox admin API (``/outbox/...``)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from ai_customer_service.outbox.events import EventType
from ai_customer_service.pagination import Page
from ai_customer_service.wire import RequestModel, Timestamp


class ReplayFilter(RequestModel):
    """Which dead events to replay; every field optional (an empty filter replays all dead events)."""

    destination: str | None = Field(default=None, max_length=64)
    session_id: uuid.UUID | None = None
    type: EventType | None = None


class EventOut(BaseModel):
    id: str
    seq: int
    destination: str
    type: str
    status: str
    session_id: str | None
    ticket_id: str | None
    source_message_id: str | None
    attempts: int = Field(description="attempts in the current round")
    replays: int
    next_attempt_at: Timestamp | None
    claimed_by: str | None
    claim_expires_at: Timestamp | None
    last_status: int | None
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    data: dict[str, Any] = Field(description="the event's payload as delivered")


class AttemptOut(BaseModel):
    round: int
    attempt: int
    worker: str
    status_code: int | None
    error: str | None
    outcome: str
    duration_ms: float
    response_excerpt: str | None
    created_at: Timestamp


class EventDetailOut(EventOut):
    attempt_log: list[AttemptOut] = Field(description="every delivery attempt, oldest first")


class EventList(Page[EventOut]):
    """One page of events, newest first."""


class ReplayedOut(BaseModel):
    replayed: int
