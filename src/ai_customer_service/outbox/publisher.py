"""Publishing a conversation's events to whoever subscribed to it, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.config import Settings
from ai_customer_service.live import live_row
from ai_customer_service.outbox.events import EventType, destinations_for, emit


class SessionRef(Protocol):
    """What routing needs of a session: an ORM ``Session`` or the webhook's plain row."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def channel(self) -> str: ...

    @property
    def platform(self) -> str | None: ...


class TicketRef(Protocol):
    """What the handoff events carry of the ticket just opened (a ``Ticket`` or a planned one)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def reason(self) -> str: ...

    @property
    def priority(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def subject(self) -> str: ...


def handoff_events(ticket: TicketRef, *, manual: bool = False) -> list[tuple[EventType, dict[str, Any]]]:
    """``handoff.triggered`` then ``ticket.created``, for a ticket just opened (pure)."""
    handoff: dict[str, Any] = {"reason": ticket.reason, "priority": ticket.priority}
    if manual:
        handoff["manual"] = True
    return [
        (EventType.HANDOFF_TRIGGERED, handoff),
        (EventType.TICKET_CREATED, {**handoff, "status": ticket.status, "subject": ticket.subject}),
    ]


class EventPublisher:
    """Routes an event of a session to its platform, or its channel's callback subscription."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def publish(
        self,
        tx: Callable[[], AsyncSession],
        session: SessionRef,
        type: EventType,
        data: dict[str, Any],
        *,
        live: list[dict[str, Any]],
        ticket_id: uuid.UUID | None = None,
        source_message_id: str | None = None,
    ) -> list[uuid.UUID]:
        """Add the event for every destination of ``session`` to the ORM session ``tx()`` (called
        only when there is a destination), and its live-stream row (the agent console, the chat
        widget) to ``live``, which the unit of work writes before it commits; returns the outbox
        event ids (maybe none)."""
        live.append(live_row(type=type.value, session_id=session.id, ticket_id=ticket_id, data=data))
        destinations = destinations_for(
            self.settings, platform=session.platform, channel=session.channel, event_type=type
        )
        if not destinations:
            return []
        orm = tx()
        return [
            emit(
                orm,
                destination=destination,
                type=type,
                session_id=session.id,
                ticket_id=ticket_id,
                source_message_id=source_message_id,
                data=data,
            )
            for destination in destinations
        ]

    def publish_handoff(
        self,
        tx: Callable[[], AsyncSession],
        session: SessionRef,
        ticket: TicketRef,
        *,
        live: list[dict[str, Any]],
        source_message_id: str | None = None,
        manual: bool = False,
    ) -> None:
        """``handoff.triggered`` then ``ticket.created``, for a ticket just opened for ``session``."""
        for type, data in handoff_events(ticket, manual=manual):
            self.publish(
                tx, session, type, data, live=live, ticket_id=ticket.id, source_message_id=source_message_id
            )
