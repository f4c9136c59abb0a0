"""Publishing a conversation's events to whoever subscribed to it, inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.config import Settings
from ai_customer_service.conversation.models import Session
from ai_customer_service.outbox.events import EventType, destinations_for, emit


class EventPublisher:
    """Routes an event of a session to its platform, or its channel's callback subscription."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def publish(
        self,
        tx: AsyncSession,
        session: Session,
        type: EventType,
        data: dict[str, Any],
        *,
        ticket_id: uuid.UUID | None = None,
        source_message_id: str | None = None,
    ) -> list[uuid.UUID]:
        """Add the event for every destination of ``session``; returns the event ids (maybe none)."""
        return [
            emit(
                tx,
                destination=destination,
                type=type,
                session_id=session.id,
                ticket_id=ticket_id,
                source_message_id=source_message_id,
                data=data,
            )
            for destination in destinations_for(
                self.settings, platform=session.platform, channel=session.channel, event_type=type
            )
        ]
