"""Ingesting one customer message exactly once, in one transaction (contract §5 "Processing").

Order of work:

1. outside any transaction, one indexed read without locks (:func:`conversations.pre_read`): the
   dedup record (a duplicate is answered from it, writing nothing), the path the request's v1
   signature was first used on (another path: 403 ``CS_AUTH_4035``) and whether a human owns the
   customer's conversation; then the process-local "known to be over the limit" memo, and the
   dialog's ``analyze`` step (rules, retrieval, the optional LLM: possibly slow, never under a
   database lock), skipped while a human owns the conversation;
2. one transaction, on pre-built Core statements (:mod:`ai_customer_service.conversation.repository`):
   find-or-create and lock the customer's session (a concurrent duplicate of the same customer waits
   here for the first), then in one read under that lock the dedup record (a duplicate is answered
   from it, before any rate limit), the rate-limit count and the ticket state; decide; write the
   inbound message, the bot reply, the audit row, the dedup record and the session in one statement
   (PostgreSQL), plus the ticket on handoff and the signature's claim on its path. If the bot owns
   the conversation after all and the message was not analysed, the transaction is abandoned, the
   message analysed and the transaction run again. The dedup key's unique index is the last line of
   defence (a duplicate under another customer's session). Any failure rolls all of it back, so the
   upstream's retry is processed normally.

A conversation belongs to its source: the session is found by ``(channel, open_id, source)``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.config import Settings
from ai_customer_service.conversation import repository as conversations
from ai_customer_service.conversation.models import Session
from ai_customer_service.conversation.states import AuthorType, Direction, SessionStatus
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.engine import Analysis, Decision, DecisionKind, DialogEngine
from ai_customer_service.errors import Conflict, RateLimited
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.outbox.events import EventType, destinations_for
from ai_customer_service.outbox.publisher import EventPublisher
from ai_customer_service.security import replay
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.ticket import repository as tickets
from ai_customer_service.ticket.service import reopen_on_customer_message
from ai_customer_service.ticket.states import Priority, TicketStatus
from ai_customer_service.webhook.ratelimit import BlockedCustomers
from ai_customer_service.webhook.schemas import InboundMessage

log = get_logger(__name__)


class InjectedFault(RuntimeError):
    """Raised at a named fault point (test environments only)."""


@dataclass(frozen=True)
class IngestResult:
    response: dict[str, Any]
    duplicate: bool
    event_id: str | None = None  # the ``message.received`` event of a platform's message


# kept with the dedup record, never returned: the ``message.received`` event (for platforms) and the
# customer the message_id belongs to (a retry must come from the same customer)
_EVENT_KEY = "_event_id"
_OPEN_ID_KEY = "_open_id"


class FaultPoints:
    """Named failure points for tests: ``AI_CS_TEST_FAULTS=after_ticket_insert:1`` fires once."""

    def __init__(self, spec: str = "") -> None:
        self.remaining: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, count = item.partition(":")
            self.remaining[name] = int(count or "1")

    def hit(self, name: str) -> None:
        left = self.remaining.get(name, 0)
        if left > 0:
            self.remaining[name] = left - 1
            raise InjectedFault(f"injected fault at {name}")


class IngestService:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        dialog: DialogEngine,
        metrics: Metrics,
        events: EventPublisher,
        faults: FaultPoints | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.dialog = dialog
        self.metrics = metrics
        self.events = events
        self.faults = faults or FaultPoints()
        self.blocked = BlockedCustomers()

    async def ingest(
        self,
        message: InboundMessage,
        *,
        source: str = "",
        request_id: str = "",
        signature: SignatureBinding | None = None,
    ) -> IngestResult:
        """Process one message exactly once. ``source`` is "" for the generic webhook, else the
        platform's name (part of the conversation's identity); ``signature`` is the request's v1
        signature binding, claimed for its path (a signature used on another path: 403
        ``CS_AUTH_4035``)."""
        # one indexed read, no lock, no write: a duplicate is answered from it, a replay to another
        # path refused, and a conversation a human owns skips the analysis
        pre = await self._pre_read(message, source, signature)
        replay.check(signature, pre.signature_target)
        if pre.duplicate_response is not None:
            return await self._duplicate(message, pre.duplicate_response, source, pre.notified_at)
        if self.settings.rate_limit_messages:
            wait = self.blocked.retry_after(_limit_key(source, message.channel), message.open_id)
            if wait is not None:
                # known to be over the limit (process-local memo): refuse, write nothing
                self.metrics.webhook_rejections.labels("CS_SES_4002").inc()
                raise _rate_limited(wait)

        # the dialog's analysis (rules, retrieval, the optional LLM) runs outside the transaction and
        # only when the bot may answer: never for a duplicate, nor while a human owns the conversation
        analysis = None
        if not pre.human_owns:
            analysis = await self.dialog.analyze(message.content, message.content_type)
        claim = signature  # the v1 signature to claim for this path, with the message
        for _ in range(3):
            try:
                async with self.db.transaction() as tx:
                    return await self._process(
                        tx, message, analysis, source=source, request_id=request_id, signature=claim
                    )
            except _NeedsAnalysis:
                # the pre-read said a human owns the conversation, but under the lock the bot does
                # (the ticket was closed meanwhile): analyse now, outside the transaction, and retry
                analysis = await self.dialog.analyze(message.content, message.content_type)
            except RateLimited:
                self.metrics.webhook_rejections.labels("CS_SES_4002").inc()
                raise
            except _Duplicate as dup:
                return await self._duplicate(message, dup.response, source, None)
            except IntegrityError:
                # the dedup key (or the signature) was taken concurrently under another session's lock
                again = await self._pre_read(message, source, signature)
                replay.check(signature, again.signature_target)
                if again.duplicate_response is not None:
                    return await self._duplicate(message, again.duplicate_response, source, again.notified_at)
                if claim is None or again.signature_target != claim.target:
                    raise
                # the signature is already this path's, but the message's dedup record is gone (purged
                # by a short retention): process it again, as documented, without claiming twice
                claim = None
        # pragma: no cover - a pass fails at most once for each reason above
        raise RuntimeError("the message could not be processed in three attempts")

    async def _pre_read(
        self, message: InboundMessage, source: str, signature: SignatureBinding | None
    ) -> conversations.PreRead:
        window = self.settings.ticket_reopen_window_seconds
        async with self.db.sessionmaker() as tx:
            conn = await tx.connection()
            return await conversations.pre_read(
                conn,
                source=source,
                channel=message.channel,
                open_id=message.open_id,
                message_id=message.dedup_key,
                signature_digest=signature.digest if signature else None,
                reopen_since=datetime.now(UTC) - timedelta(seconds=window) if window > 0 else None,
            )

    async def _session_owner(self, session_id: uuid.UUID) -> str | None:
        async with self.db.sessionmaker() as tx:
            return await conversations.session_open_id(tx, session_id)

    async def _duplicate(
        self,
        message: InboundMessage,
        stored: dict[str, Any],
        source: str,
        notified_at: datetime | None,
    ) -> IngestResult:
        """Answer a duplicate from its stored response. Writes nothing, except the one
        ``message.deduplicated`` event per original message per ``AI_CS_DEDUP_EVENT_WINDOW_SECONDS``
        (when someone is subscribed to the conversation's events)."""
        owner = stored.get(_OPEN_ID_KEY)
        if owner is None and stored.get("session_id"):
            # a record written before owners were stored: the session it answered says whose it is
            owner = await self._session_owner(uuid.UUID(str(stored["session_id"])))
        if owner is not None and owner != message.open_id:
            # another customer's message_id: never hand one customer another's reply, and never drop
            # the message silently either — the gateway must make its ids unique per channel
            self.metrics.webhook_rejections.labels("CS_REQ_4091").inc()
            raise Conflict(
                "message_id was already used by another customer on this channel; message ids must be "
                "unique per channel (e.g. prefix them with the chat id)",
                "CS_REQ_4091",
            )
        self.metrics.messages_processed.labels(message.channel, "duplicate").inc()
        response = {k: v for k, v in stored.items() if not k.startswith("_")}
        session_id = response.get("session_id")
        now = datetime.now(UTC)
        cutoff = now - timedelta(seconds=self.settings.dedup_event_window_seconds)
        if (
            session_id
            and message.dedup_key
            and (notified_at is None or notified_at < cutoff)
            and destinations_for(self.settings, platform=source or None, channel=message.channel)
        ):
            async with self.db.transaction() as tx:
                won = await conversations.mark_notified(
                    await tx.connection(),
                    source=source,
                    channel=message.channel,
                    message_id=message.dedup_key,
                    now=now,
                    cutoff=cutoff,
                )
                session = await tx.get(Session, uuid.UUID(session_id)) if won else None
                if session is not None:
                    self.events.publish(
                        tx,
                        session,
                        EventType.MESSAGE_DEDUPLICATED,
                        {
                            "channel": message.channel,
                            "open_id": message.open_id,
                            "message_id": response["message_id"],
                        },
                        source_message_id=message.message_id,
                    )
        return IngestResult(
            response={**response, "duplicate": True}, duplicate=True, event_id=stored.get(_EVENT_KEY)
        )

    async def _process(
        self,
        tx: AsyncSession,
        message: InboundMessage,
        analysis: Analysis | None,
        *,
        source: str,
        request_id: str,
        signature: SignatureBinding | None,
    ) -> IngestResult:
        now = datetime.now(UTC)
        conn = await tx.connection()
        # The customer's session lock serialises their messages, so a duplicate in flight waits here
        # for the original and then finds its record; the unique key is the last line of defence.
        session = await self._session(tx, conn, message, now, platform=source or None)
        limit = self.settings.rate_limit_messages
        window = self.settings.rate_limit_window_seconds
        state = await conversations.read_state(
            conn,
            session.id,
            source=source,
            channel=message.channel,
            message_id=message.dedup_key,
            rate_limit_since=now - timedelta(seconds=window) if limit else None,
        )
        if state.duplicate_response is not None:
            raise _Duplicate(state.duplicate_response)
        if limit and state.recent_inbound >= limit:
            self._over_limit(message, state, now, source)

        inbound = conversations.message_row(
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
        rows = [inbound]
        received = self.events.publish(
            tx,
            session,
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
            source_message_id=message.message_id,
        )

        decision: Decision | None = None
        before = session.status
        ticket_id = state.active_ticket_id
        if ticket_id is None and state.latest_ticket_status == TicketStatus.RESOLVED.value:
            # a message soon after resolution reopens that ticket instead of starting a new one
            reopened = await reopen_on_customer_message(
                tx, session.id, self.settings.ticket_reopen_window_seconds
            )
            if reopened is not None:
                ticket_id = reopened.id
                await tx.flush()
                session.status = await conversations.session_status(conn, session.id)
                self.events.publish(
                    tx,
                    session,
                    EventType.TICKET_REOPENED,
                    {"status": reopened.status, "reason": "customer_message"},
                    ticket_id=reopened.id,
                    source_message_id=message.message_id,
                )
        if ticket_id is None and session.status == SessionStatus.HANDOFF.value:
            # its ticket is resolved and past the reopen window: nobody owns the conversation any
            # more, so the bot takes it back rather than letting the message go unanswered
            session.status = SessionStatus.IDLE.value
        if ticket_id is not None:
            # a human owns the conversation: the bot stays silent, the message goes to the ticket
            pass
        else:
            if analysis is None:
                raise _NeedsAnalysis
            started = time.perf_counter()
            decision = self.dialog.decide(analysis, low_confidence_streak=session.low_confidence_streak)
            latency_ms = analysis.latency_ms + (time.perf_counter() - started) * 1000
            session.low_confidence_streak = (
                session.low_confidence_streak + 1 if decision.low_confidence else 0
            )
            self.events.publish(
                tx,
                session,
                EventType.INTENT_RESOLVED,
                {
                    "intent": decision.intent,
                    "confidence": decision.confidence,
                    "decision": decision.kind.value,
                    "reason": decision.reason,
                },
                source_message_id=message.message_id,
            )
            record = decision.record(latency_ms)
            if decision.handoff:
                ticket = await tickets.create_for_handoff(
                    tx,
                    session_id=session.id,
                    channel=session.channel,
                    open_id=session.open_id,
                    reason=decision.reason.removeprefix("rule:"),
                    priority=decision.priority or Priority.P2,
                    subject=message.content[:200],
                    context={
                        "trigger_message_id": str(inbound_id),
                        "channel_message_id": message.message_id,
                        "decision": record,
                        "language": analysis.language,
                    },
                )
                ticket_id = ticket.id
                self.faults.hit("after_ticket_insert")
                session.status = SessionStatus.HANDOFF.value
                session.low_confidence_streak = 0
                self.metrics.handoffs.labels(decision.reason).inc()
                self.events.publish_handoff(tx, session, ticket, source_message_id=message.message_id)
            self.metrics.dialog_latency.observe(latency_ms / 1000)
            bot_reply = conversations.message_row(
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
            rows.append(bot_reply)
            self.events.publish(
                tx,
                session,
                EventType.REPLY_GENERATED,
                {"message_id": bot_reply["id"], "reply": decision.reply, "citations": decision.citations},
                ticket_id=ticket_id,
                source_message_id=message.message_id,
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
        # the original's shape (its operators' queries read it): one row per processed message,
        # object = the session, actor = the customer, after_state = intent, reply and the ticket;
        # our richer record (session states, ids, decision) is in details
        audit_row = audit.row(
            object_type="message_processed",
            object_id=session.id,
            action="process",
            actor_type="customer",
            actor_id=message.open_id[:64],
            before_state={},
            after_state={
                "intent": response["intent"],
                "reply": response["reply"],
                **({"ticket_id": response["ticket_id"]} if response["ticket_id"] else {}),
            },
            code="CS_REQ_4003" if message.truncated else None,
            request_id=request_id or None,
            details={
                "session_status_before": before,
                "session_status_after": session.status,
                "message_id": str(inbound_id),
                "channel_message_id": message.message_id,
                "source": source or None,
                "decision": decision.reason if decision else "bot_silent_handoff",
                "ticket_id": response["ticket_id"] or None,
                **({"original_length": message.original_length} if message.truncated else {}),
            },
        )
        event_id = str(received[0]) if received else None
        dedup = None
        if message.dedup_key:
            dedup = conversations.dedup_row(
                source=source,
                channel=message.channel,
                message_id=message.dedup_key,
                session_id=session.id,
                response={
                    **response,
                    _OPEN_ID_KEY: message.open_id,
                    **({_EVENT_KEY: event_id} if event_id else {}),
                },
                now=now,
            )
        # the v1 signature's claim on this path: the pre-read saw no claim by another path, and a
        # concurrent one makes this insert fail (IntegrityError, then 403 CS_AUTH_4035)
        claim = None
        if signature is not None:
            claim = {"digest": signature.digest, "target": signature.target, "created_at": now}
        await conversations.record_message(
            conn, session, now=now, messages=rows, audit_row=audit_row, dedup=dedup, signature_use=claim
        )
        if tx.new or tx.dirty:
            await tx.flush()  # outbox events (and any ORM change) fail here, inside the transaction
        self.metrics.messages_processed.labels(message.channel, _outcome(decision)).inc()
        return IngestResult(response=response, duplicate=False, event_id=event_id)

    async def _session(
        self,
        tx: AsyncSession,
        conn: AsyncConnection,
        message: InboundMessage,
        now: datetime,
        *,
        platform: str | None,
    ) -> conversations.OpenSession:
        async def open_() -> conversations.OpenSession:
            return await conversations.open_session(
                tx,
                conn,
                channel=message.channel,
                open_id=message.open_id,
                user_id=message.user_id,
                now=now,
                platform=platform,
            )

        session = await open_()
        idle = timedelta(seconds=self.settings.session_idle_timeout_seconds)
        if session.status != SessionStatus.HANDOFF.value and session.last_message_at < now - idle:
            # the sweeper has not closed it yet: close it now and start a fresh conversation
            before = await conversations.close_open_session(conn, session, now=now, reason="timeout")
            await audit.insert_row(
                conn,
                object_type="session",
                object_id=session.id,
                action="close",
                actor_type="system",
                before_state=before,
                after_state=SessionStatus.CLOSED.value,
                details={"reason": "timeout"},
            )
            session = await open_()
        return session

    def _over_limit(
        self, message: InboundMessage, state: conversations.MessageState, now: datetime, source: str
    ) -> None:
        window = self.settings.rate_limit_window_seconds
        oldest = state.oldest_inbound
        wait = window if oldest is None else (oldest + timedelta(seconds=window) - now).total_seconds()
        wait = max(1.0, wait)
        self.blocked.block(_limit_key(source, message.channel), message.open_id, wait)
        raise _rate_limited(int(wait + 0.999))


def _limit_key(source: str, channel: str) -> str:
    """The rate-limit memo's key: a customer per source (one source flooding with another's open_id
    must not get that customer blocked)."""
    return f"{source}/{channel}" if source else channel


class _NeedsAnalysis(Exception):
    """The bot owns the conversation after all, and the message was not analysed yet."""


class _Duplicate(Exception):
    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("duplicate message")
        self.response = response


def _rate_limited(retry_after: int) -> RateLimited:
    return RateLimited(
        "message rate limit exceeded", "CS_SES_4002", headers={"Retry-After": str(max(1, retry_after))}
    )


def _outcome(decision: Decision | None) -> str:
    if decision is None:
        return "to_agent"
    if decision.kind is DecisionKind.HANDOFF:
        return "handoff"
    return decision.kind.value
