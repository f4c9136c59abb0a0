"""Session and message enumerations (pure)."""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    IDLE = "idle"
    PROCESSING = "processing"
    WAITING_FEEDBACK = "waiting_feedback"
    HANDOFF = "handoff"
    CLOSED = "closed"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AuthorType(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"
