"""What one customer message does, decided from the facts loaded under the session lock (pure).

:func:`plan_message` takes what the ingest service read (the locked session, the dedup record, the
rate-limit count, the session's tickets, the dialog's analysis) and returns what to do: answer from
the dedup record (:class:`Duplicate`), refuse (:class:`OverLimit`), ask for the analysis first
(:class:`NeedsAnalysis`), or a :class:`Plan` — the session's transition, the ticket to reopen or
open, the rows to store, the events to publish in order, and the response. It reads no clock, no
database and no network: the service applies the plan and commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ai_customer_service.conversation.repository import OpenSession, message_row
from ai_customer_service.conversation.states import (
    AuthorType,
    Direction,
    SessionAction,
    SessionStatus,
    next_status,
)
from ai_customer_service.dialog.engine import Analysis, Decision, DecisionKind
from ai_customer_service.outbox.events import EventType
from ai_customer_service.outbox.publisher import handoff_events
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.ticket.states import Priority, TicketStatus
from ai_customer_service.webhook.facts import MessageState
from ai_customer_service.webhook.schemas import InboundMessage

# kept with the dedup record, never returned: the ``message.received`` event (for platforms) and the
# customer the message_id belongs to (a retry must come from the same customer)
EVENT_KEY = "_event_id"
OPEN_ID_KEY = "_open_id"

# the dialog's pure policy, timed: (decision, latency of analysis + decision in ms)
Decide = Callable[[Analysis, int], tuple[Decision, float]]


@dataclass(frozen=True)
class MessageFacts:
    message: InboundMessage
    source: str  # "" for the generic webhook, else the platform's name
    request_id: str
    now: datetime
    session: OpenSession  # locked (a session quiet for too long was already closed and replaced)
    state: MessageState
    rate_limit: int  # AI_CS_RATE_LIMIT_MESSAGES (0: off)
    rate_limit_window_seconds: int
    analysis: Analysis | None  # None: not analysed (the pre-read said a human owns the conversation)
    signature: SignatureBinding | None  # the v1 signature to claim for this path


@dataclass(frozen=True)
class Duplicate:
    response: dict[str, Any]


@dataclass(frozen=True)
class OverLimit:
    retry_after: float  # seconds until the oldest message in the window leaves it (at least 1)


@dataclass(frozen=True)
class NeedsAnalysis:
    """The bot owns the conversation after all, and the message was not analysed yet."""


@dataclass(frozen=True)
class PlannedTicket:
    """The ticket a handoff opens (``status`` open), with its id chosen here."""

    id: uuid.UUID
    reason: str
    priority: str
    subject: str
    context: dict[str, Any]
    status: str = TicketStatus.OPEN.value


@dataclass(frozen=True)
class PlannedEvent:
    type: EventType
    data: dict[str, Any]
    ticket_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Plan:
    session_status: str  # the session's status after the message (checked against its life cycle)
    low_confidence_streak: int
    reopen_ticket_id: uuid.UUID | None  # a ticket resolved within the window: the customer reopens it
    new_ticket: PlannedTicket | None  # the bot hands the conversation to a human
    decision: Decision | None  # the bot's (None: a human owns the conversation, the bot is silent)
    latency_ms: float | None
    messages: list[dict[str, Any]]  # cs_messages rows: the inbound message, the bot's reply
    events: list[PlannedEvent]  # in publication order; the first is ``message.received``
    response: dict[str, Any]
    dedup_response: dict[str, Any] | None  # what the dedup record keeps (the event id is added on publish)
    audit: dict[str, Any]  # the ``message_processed`` audit row's fields
    signature_use: dict[str, Any] | None  # the v1 signature's claim on this path
    outcome: str  # the messages_processed metric's label
    handoff_reason: str | None = field(default=None)  # the handoffs metric's label


def plan_message(facts: MessageFacts, decide: Decide) -> Plan | Duplicate | OverLimit | NeedsAnalysis:
    """Decide what the message does (see the module's docstring)."""
    state, message, session, now = facts.state, facts.message, facts.session, facts.now
    if state.duplicate_response is not None:
        return Duplicate(state.duplicate_response)
    if facts.rate_limit and state.recent_inbound >= facts.rate_limit:
        window = facts.rate_limit_window_seconds
        oldest = state.oldest_inbound
        wait = window if oldest is None else (oldest + timedelta(seconds=window) - now).total_seconds()
        return OverLimit(max(1.0, wait))

    inbound = message_row(
        session_id=session.id,
        direction=Direction.INBOUND,
        author_type=AuthorType.CUSTOMER,
        author_id=message.open_id[:64],
        content=message.content,
        content_type=message.content_type,
        channel_message_id=message.message_id,
        truncated=message.truncated,
        reply_to=message.reply_to,
        sent_at=message.sent_at,
        now=now,
    )
    inbound_id: uuid.UUID = inbound["id"]
    messages = [inbound]
    events = [
        PlannedEvent(
            EventType.MESSAGE_RECEIVED,
            {
                "message_id": inbound_id,
                "channel": message.channel,
                "open_id": message.open_id,
                "user_id": message.user_id,
                "content": message.content,
                "content_type": message.content_type,
                "truncated": message.truncated,
            },
        )
    ]

    status = SessionStatus(session.status)
    streak = session.low_confidence_streak
    ticket_id = state.active_ticket_id
    reopen = None
    if (
        ticket_id is None
        and state.latest_ticket_status == TicketStatus.RESOLVED.value
        and state.reopenable_ticket_id is not None
    ):
        # a message soon after resolution reopens that ticket instead of starting a new one
        reopen = ticket_id = state.reopenable_ticket_id
        if status is not SessionStatus.HANDOFF:
            status = next_status(status, SessionAction.HAND_OFF)
        events.append(
            PlannedEvent(
                EventType.TICKET_REOPENED,
                {"status": TicketStatus.OPEN.value, "reason": "customer_message"},
                ticket_id=reopen,
            )
        )
    if ticket_id is None and status is SessionStatus.HANDOFF:
        # its ticket is resolved and past the reopen window: nobody owns the conversation any more,
        # so the bot takes it back rather than letting the message go unanswered
        status = next_status(status, SessionAction.HAND_BACK)

    decision: Decision | None = None
    latency_ms: float | None = None
    new_ticket: PlannedTicket | None = None
    if ticket_id is None:  # the bot owns the conversation (else a human does: the bot stays silent)
        if facts.analysis is None:
            return NeedsAnalysis()
        decision, latency_ms = decide(facts.analysis, streak)
        streak = streak + 1 if decision.low_confidence else 0
        events.append(
            PlannedEvent(
                EventType.INTENT_RESOLVED,
                {
                    "intent": decision.intent,
                    "confidence": decision.confidence,
                    "decision": decision.kind.value,
                    "reason": decision.reason,
                },
            )
        )
        record = decision.record(latency_ms)
        if decision.handoff:
            new_ticket = PlannedTicket(
                id=uuid.uuid4(),
                reason=decision.reason.removeprefix("rule:"),
                priority=(decision.priority or Priority.P2).value,
                subject=message.content[:200],
                context={
                    "trigger_message_id": str(inbound_id),
                    "channel_message_id": message.message_id,
                    "decision": record,
                    "language": facts.analysis.language,
                },
            )
            ticket_id = new_ticket.id
            status = next_status(status, SessionAction.HAND_OFF)
            streak = 0
            events.extend(
                PlannedEvent(t, data, ticket_id=new_ticket.id) for t, data in handoff_events(new_ticket)
            )
        bot_reply = message_row(
            session_id=session.id,
            direction=Direction.OUTBOUND,
            author_type=AuthorType.BOT,
            content=decision.reply,
            intent=decision.intent,
            confidence=decision.confidence,
            citations=decision.citations,
            decision=record,
            latency_ms=round(latency_ms, 2),
            reply_to=str(inbound_id),
            now=now + timedelta(microseconds=1),
        )
        messages.append(bot_reply)
        events.append(
            PlannedEvent(
                EventType.REPLY_GENERATED,
                {"message_id": bot_reply["id"], "reply": decision.reply, "citations": decision.citations},
                ticket_id=ticket_id,
            )
        )

    response = {
        "received": True,
        "session_id": str(session.id),
        "message_id": str(inbound_id),
        "reply": decision.reply if decision else "",
        "intent": (decision.intent or "") if decision else "handoff_pending",
        "confidence": (decision.confidence or 0.0) if decision else 0.0,
        "handoff": ticket_id is not None,
        "ticket_id": str(ticket_id) if ticket_id else "",
        "citations": decision.citations if decision else [],
        "duplicate": False,
    }
    return Plan(
        session_status=status.value,
        low_confidence_streak=streak,
        reopen_ticket_id=reopen,
        new_ticket=new_ticket,
        decision=decision,
        latency_ms=latency_ms,
        messages=messages,
        events=events,
        response=response,
        dedup_response={**response, OPEN_ID_KEY: message.open_id} if message.dedup_key else None,
        audit=_audit(facts, response, status, decision, inbound_id),
        signature_use=(
            {"digest": facts.signature.digest, "target": facts.signature.target, "created_at": now}
            if facts.signature is not None
            else None
        ),
        outcome=_outcome(decision),
        handoff_reason=decision.reason if decision is not None and decision.handoff else None,
    )


def _audit(
    facts: MessageFacts,
    response: dict[str, Any],
    status_after: SessionStatus,
    decision: Decision | None,
    inbound_id: uuid.UUID,
) -> dict[str, Any]:
    """The original's shape (its operators' queries read it): one row per processed message,
    object = the session, actor = the customer, after_state = intent, reply and the ticket; our
    richer record (session states, ids, decision) is in details."""
    message = facts.message
    return {
        "object_type": "message_processed",
        "object_id": facts.session.id,
        "action": "process",
        "actor_type": "customer",
        "actor_id": message.open_id[:64],
        "before_state": {},
        "after_state": {
            "intent": response["intent"],
            "reply": response["reply"],
            **({"ticket_id": response["ticket_id"]} if response["ticket_id"] else {}),
        },
        "code": "CS_REQ_4003" if message.truncated else None,
        "request_id": facts.request_id or None,
        "details": {
            "session_status_before": facts.session.status,
            "session_status_after": status_after.value,
            "message_id": str(inbound_id),
            "channel_message_id": message.message_id,
            "source": facts.source or None,
            "decision": decision.reason if decision else "bot_silent_handoff",
            "ticket_id": response["ticket_id"] or None,
            **({"original_length": message.original_length} if message.truncated else {}),
        },
    }


def _outcome(decision: Decision | None) -> str:
    if decision is None:
        return "to_agent"
    if decision.kind is DecisionKind.HANDOFF:
        return "handoff"
    return decision.kind.value
