"""Response bodies of the conversation API (``/sessions/...``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ai_customer_service.pagination import Page
from ai_customer_service.wire import Timestamp


class SessionOut(BaseModel):
    id: str
    channel: str
    open_id: str
    user_id: str | None
    status: str
    low_confidence_streak: int
    ticket_id: str | None = Field(description="the session's latest ticket, if any")
    created_at: Timestamp
    updated_at: Timestamp
    last_message_at: Timestamp
    closed_at: Timestamp | None
    close_reason: str | None


class SessionMessageOut(BaseModel):
    id: str
    session_id: str
    direction: str
    author_type: str
    author_id: str | None
    content: str
    content_type: str
    channel_message_id: str | None
    truncated: bool
    reply_to: str | None
    intent: str | None
    confidence: float | None
    citations: list[dict[str, Any]]
    decision: dict[str, Any] | None
    latency_ms: float | None
    sent_at: Timestamp | None
    created_at: Timestamp


class MessagePage(Page[SessionMessageOut]):
    """One page of a conversation's messages, oldest first."""


class FeedbackOut(BaseModel):
    id: str
    session_id: str
    score: int
    comment: str | None
