"""Event types and :func:`emit`, the one way the services put an event into the outbox.

``emit`` only adds a row to the caller's transaction: the event commits with the change that caused
it, or not at all. :func:`destinations_for` tells a caller where a session's events go.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.config import Settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.values import json_safe

CHANNEL_DESTINATION_PREFIX = "channel:"


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    INTENT_RESOLVED = "intent.resolved"
    HANDOFF_TRIGGERED = "handoff.triggered"
    TICKET_CREATED = "ticket.created"
    REPLY_GENERATED = "reply.generated"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_RESOLVED = "ticket.resolved"
    TICKET_CLOSED = "ticket.closed"
    TICKET_REOPENED = "ticket.reopened"
    AGENT_REPLIED = "agent.replied"
    MESSAGE_DEDUPLICATED = "message.deduplicated"


def channel_destination(channel: str) -> str:
    return f"{CHANNEL_DESTINATION_PREFIX}{channel}"


def destinations_for(
    settings: Settings, *, platform: str | None, channel: str, event_type: EventType | str | None = None
) -> list[str]:
    """Where the events of a session go; empty when nothing is subscribed (then emit nothing).

    A session that came through a platform adapter reports to that platform (when it is enabled).
    A generic-webhook session reports to its channel's callback subscription, if one is configured
    (``AI_CS_CHANNEL_<NAME>_CALLBACK_URL``), optionally limited to some event types.
    """
    if platform is not None:
        profile = {p.name: p for p in settings.enabled_platforms}.get(platform.lower())
        return [profile.name] if profile is not None else []
    callback = settings.channel_callbacks.get(channel.lower())
    if callback is None:
        return []
    if event_type is not None and callback.event_types and str(event_type) not in callback.event_types:
        return []
    return [channel_destination(callback.name)]


def emit(
    tx: AsyncSession,
    *,
    destination: str,
    type: EventType,
    session_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None = None,
    source_message_id: str | None = None,
    data: dict[str, Any],
) -> uuid.UUID:
    """Add one event for ``destination`` to the caller's transaction (never flushes or commits).

    ``data`` must be JSON-serialisable; UUIDs, datetimes and enums are converted. Returns the
    event id, which is the ``id`` the receiver sees (and deduplicates on).
    """
    from ai_customer_service.outbox.models import OutboxEvent, OutboxStatus

    now = utcnow()
    event_id = uuid.uuid4()
    tx.add(
        OutboxEvent(
            id=event_id,
            destination=destination,
            type=EventType(type).value,
            session_id=session_id,
            ticket_id=ticket_id,
            source_message_id=source_message_id,
            payload=json_safe(data),
            status=OutboxStatus.PENDING.value,
            attempts=0,
            replays=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return event_id
