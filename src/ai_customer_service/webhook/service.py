"""Ingesting one customer message exactly once, in one transaction (contract §5 "Processing").

Order of work (docs/architecture.md, "The message path"):

0. a copy of a message this process is still processing (same dedup key, same signed request: an
   upstream's retry) waits for the original and is answered from its record (``_InFlight``);
1. outside any transaction, one indexed read without locks (:func:`facts.pre_read`; on PostgreSQL in
   autocommit, no ``BEGIN``/``ROLLBACK``, on SQLite a read-only session): the dedup record (a
   duplicate is answered from it, writing nothing), the path the request's v1 signature was first
   used on (another path: 403 ``CS_AUTH_4035``) and whether a human owns the customer's
   conversation; then the process-local "known to be over the limit" memo, and the dialog's
   ``analyze`` step (rules, retrieval, the optional LLM: possibly slow, never under a database
   lock), skipped while a human owns the conversation;
2. one unit of work (``uow.Store.begin``), on pre-built Core statements:
   **load** — find-or-create and lock the customer's session (a concurrent duplicate of the same
   customer waits here for the first), then in one read under that lock the dedup record, the
   rate-limit count and the session's tickets (:func:`facts.read_state`);
   **plan** — :func:`plan.plan_message`, pure: a duplicate (answered from its record, before any rate
   limit), over the limit, or what to write;
   **apply** — the reopened or new ticket, the events in order, then the inbound message, the bot
   reply, the audit row, the dedup record, the signature's claim and the session in one statement
   (PostgreSQL). If the bot owns the conversation after all and the message was not analysed, the
   transaction is abandoned, the message analysed and the transaction run again. The dedup key's
   unique index is the last line of defence (a duplicate under another customer's session). Any
   failure rolls all of it back, so the upstream's retry is processed normally.

A conversation belongs to its source: the session is found by ``(channel, open_id, source)``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ai_customer_service.audit import repository as audit
from ai_customer_service.config import Settings
from ai_customer_service.conversation import repository as conversations
from ai_customer_service.conversation.models import Session
from ai_customer_service.conversation.sources import source_platform
from ai_customer_service.conversation.states import SessionStatus
from ai_customer_service.dialog.engine import Analysis, Decision, DialogEngine
from ai_customer_service.errors import Conflict, RateLimited
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.outbox.events import EventType, destinations_for
from ai_customer_service.security import replay
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.ticket import repository as tickets
from ai_customer_service.ticket.service import reopen_for_customer
from ai_customer_service.ticket.states import Priority
from ai_customer_service.uow import Store, UnitOfWork
from ai_customer_service.webhook import facts
from ai_customer_service.webhook.plan import (
    EVENT_KEY,
    OPEN_ID_KEY,
    Duplicate,
    MessageFacts,
    NeedsAnalysis,
    OverLimit,
    Plan,
    plan_message,
)
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
    # the message's dedup record as stored (or found), for copies of it in flight (``_InFlight``)
    record: dict[str, Any] | None = field(default=None, repr=False, compare=False)


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
        store: Store,
        settings: Settings,
        dialog: DialogEngine,
        metrics: Metrics,
        faults: FaultPoints | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dialog = dialog
        self.metrics = metrics
        self.faults = faults or FaultPoints()
        self.blocked = BlockedCustomers()
        self.in_flight = _InFlight()

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
        ``CS_AUTH_4035``).

        A copy of a message this process is still processing (an upstream's retry that did not wait
        for the answer, the same signed request) waits for the original and is answered from its
        record, as it would be by the database a moment later, instead of queueing on the session's
        lock (and, before that, analysing the text again) to find the same record. If the original
        ends without a record (an error, a rate limit), the copy is processed on its own."""
        key = _in_flight_key(message, source, signature)
        if key is None:
            return await self._ingest(message, source=source, request_id=request_id, signature=signature)
        record = await self.in_flight.wait(key)
        if record is not None:
            self.metrics.webhook_coalesced.inc()
            return await self._duplicate(message, record, source, None)
        with self.in_flight.lead(key) as lead:
            result = await self._ingest(message, source=source, request_id=request_id, signature=signature)
            lead.done(result.record)
            return result

    async def _ingest(
        self,
        message: InboundMessage,
        *,
        source: str,
        request_id: str,
        signature: SignatureBinding | None,
    ) -> IngestResult:
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
                async with self.store.begin() as uow:
                    return await self._process(
                        uow, message, analysis, source=source, request_id=request_id, signature=claim
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
    ) -> facts.PreRead:
        window = self.settings.ticket_reopen_window_seconds
        async with self.store.read_one() as conn:
            return await facts.pre_read(
                conn,
                source=source,
                channel=message.channel,
                open_id=message.open_id,
                message_id=message.dedup_key,
                signature_digest=signature.digest if signature else None,
                reopen_since=datetime.now(UTC) - timedelta(seconds=window) if window > 0 else None,
            )

    async def _session_owner(self, session_id: uuid.UUID) -> str | None:
        async with self.store.read() as tx:
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
        owner = stored.get(OPEN_ID_KEY)
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
            and destinations_for(self.settings, platform=source_platform(source), channel=message.channel)
        ):
            async with self.store.begin() as uow:
                won = await conversations.mark_notified(
                    uow.conn,
                    source=source,
                    channel=message.channel,
                    message_id=message.dedup_key,
                    now=now,
                    cutoff=cutoff,
                )
                session = await uow.tx.get(Session, uuid.UUID(session_id)) if won else None
                if session is not None:
                    uow.publish(
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
            response={**response, "duplicate": True},
            duplicate=True,
            event_id=stored.get(EVENT_KEY),
            record=stored,
        )

    async def _process(
        self,
        uow: UnitOfWork,
        message: InboundMessage,
        analysis: Analysis | None,
        *,
        source: str,
        request_id: str,
        signature: SignatureBinding | None,
    ) -> IngestResult:
        """Load, plan, apply (the caller commits)."""
        now = datetime.now(UTC)
        conn = uow.conn
        # load: the customer's session, locked (serialising their messages: a duplicate in flight
        # waits here for the original, then finds its record), then in one read the rest
        session = await self._session(uow, message, now, source=source)
        limit = self.settings.rate_limit_messages
        window = self.settings.ticket_reopen_window_seconds
        state = await facts.read_state(
            conn,
            session.id,
            source=source,
            channel=message.channel,
            message_id=message.dedup_key,
            rate_limit_since=now - timedelta(seconds=self.settings.rate_limit_window_seconds)
            if limit
            else None,
            reopen_since=now - timedelta(seconds=window) if window > 0 else None,
        )
        loaded = MessageFacts(
            message=message,
            source=source,
            request_id=request_id,
            now=now,
            session=session,
            state=state,
            rate_limit=limit,
            rate_limit_window_seconds=self.settings.rate_limit_window_seconds,
            analysis=analysis,
            signature=signature,
        )
        # plan (pure), then apply
        plan = self._plan(loaded)
        if plan.reopen_ticket_id is not None:
            reopened = await reopen_for_customer(uow, plan.reopen_ticket_id, open_id=message.open_id, now=now)
            if reopened is None:  # a concurrent change won: plan again as if there were nothing to reopen
                plan = self._plan(replace(loaded, state=replace(state, reopenable_ticket_id=None)))
            else:
                await uow.flush()  # its audit row goes before the message's
        return await self._apply(uow, conn, session, message, plan, source=source, now=now)

    def _plan(self, loaded: MessageFacts) -> Plan:
        outcome = plan_message(loaded, self._decide)
        if isinstance(outcome, Duplicate):
            raise _Duplicate(outcome.response)
        if isinstance(outcome, OverLimit):
            self.blocked.block(
                _limit_key(loaded.source, loaded.message.channel), loaded.message.open_id, outcome.retry_after
            )
            raise _rate_limited(int(outcome.retry_after + 0.999))
        if isinstance(outcome, NeedsAnalysis):
            raise _NeedsAnalysis
        return outcome

    def _decide(self, analysis: Analysis, low_confidence_streak: int) -> tuple[Decision, float]:
        started = time.perf_counter()
        decision = self.dialog.decide(analysis, low_confidence_streak=low_confidence_streak)
        return decision, analysis.latency_ms + (time.perf_counter() - started) * 1000

    async def _apply(
        self,
        uow: UnitOfWork,
        conn: AsyncConnection,
        session: conversations.OpenSession,
        message: InboundMessage,
        plan: Plan,
        *,
        source: str,
        now: datetime,
    ) -> IngestResult:
        """Write what the plan says, in the transaction: the ticket a handoff opens, the events in
        order, then in one statement the messages, the audit row, the dedup record, the signature's
        claim and the session's new state."""
        if plan.new_ticket is not None:
            draft = plan.new_ticket
            await tickets.insert_for_handoff(
                uow.conn,
                tickets.handoff_row(
                    ticket_id=draft.id,
                    session_id=session.id,
                    channel=session.channel,
                    open_id=session.open_id,
                    reason=draft.reason,
                    priority=Priority(draft.priority),
                    subject=draft.subject,
                    context=draft.context,
                    now=now,
                ),
            )
            self.faults.hit("after_ticket_insert")
        event_id = None
        for event in plan.events:
            ids = uow.publish(
                session,
                event.type,
                event.data,
                ticket_id=event.ticket_id,
                source_message_id=message.message_id,
            )
            if event.type is EventType.MESSAGE_RECEIVED and ids:
                event_id = str(ids[0])
        dedup = None
        if message.dedup_key and plan.dedup_response is not None:
            dedup = conversations.dedup_row(
                source=source,
                channel=message.channel,
                message_id=message.dedup_key,
                session_id=session.id,
                response={**plan.dedup_response, **({EVENT_KEY: event_id} if event_id else {})},
                now=now,
            )
        # a concurrent claim of the v1 signature by another path makes this fail (IntegrityError,
        # then 403 CS_AUTH_4035)
        await conversations.record_message(
            conn,
            session,
            status=plan.session_status,
            low_confidence_streak=plan.low_confidence_streak,
            now=now,
            messages=plan.messages,
            audit_row=audit.row(**plan.audit),
            dedup=dedup,
            signature_use=plan.signature_use,
            live_events=uow.take_live(),  # the events above, in the same statement (PostgreSQL)
        )
        await uow.flush()  # outbox events (and any ORM change) fail here, inside the transaction
        if plan.handoff_reason is not None:
            self.metrics.handoffs.labels(plan.handoff_reason).inc()
        if plan.latency_ms is not None:
            self.metrics.dialog_latency.observe(plan.latency_ms / 1000)
        self.metrics.messages_processed.labels(message.channel, plan.outcome).inc()
        return IngestResult(
            response=plan.response,
            duplicate=False,
            event_id=event_id,
            record=None if dedup is None else dedup["response"],
        )

    async def _session(
        self,
        uow: UnitOfWork,
        message: InboundMessage,
        now: datetime,
        *,
        source: str,
    ) -> conversations.OpenSession:
        async def open_() -> conversations.OpenSession:
            return await conversations.open_session(
                uow.conn,
                channel=message.channel,
                open_id=message.open_id,
                user_id=message.user_id,
                now=now,
                platform=source_platform(source),
                source=source,
            )

        session = await open_()
        idle = timedelta(seconds=self.settings.session_idle_timeout_seconds)
        if session.status != SessionStatus.HANDOFF.value and session.last_message_at < now - idle:
            # the sweeper has not closed it yet: close it now and start a fresh conversation
            before = await conversations.close_open_session(uow.conn, session, now=now, reason="timeout")
            await audit.insert_row(
                uow.conn,
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


_Key = tuple[str, str, str, str | None, str | None]


def _in_flight_key(message: InboundMessage, source: str, signature: SignatureBinding | None) -> _Key | None:
    """Copies share the dedup key and the signed request (digest and path): a copy's database path
    would pass the replay check and find the original's record, so waiting for it is equivalent."""
    if message.dedup_key is None:
        return None
    return (
        source,
        message.channel,
        message.dedup_key,
        signature.digest if signature else None,
        signature.target if signature else None,
    )


class _Lead:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[dict[str, Any] | None]) -> None:
        self.future = future

    def done(self, record: dict[str, Any] | None) -> None:
        if not self.future.done():
            self.future.set_result(record)


class _InFlight:
    """The messages this process is processing, by :func:`_in_flight_key`: each copy that arrives
    meanwhile waits for the first one's dedup record (``None``: it ended without one)."""

    def __init__(self) -> None:
        self._running: dict[_Key, asyncio.Future[dict[str, Any] | None]] = {}

    async def wait(self, key: _Key) -> dict[str, Any] | None:
        """The record of the copy in flight under ``key`` once it ends; ``None`` when there is none
        (or it ended without one)."""
        running = self._running.get(key)
        if running is None:
            return None
        # shielded: a cancelled copy must not cancel the original's future
        return await asyncio.shield(running)

    @contextmanager
    def lead(self, key: _Key) -> Iterator[_Lead]:
        """Register a message as in flight under ``key`` until the block ends (its copies then get
        what :meth:`_Lead.done` gave, or ``None`` on an error)."""
        lead = _Lead(asyncio.get_running_loop().create_future())
        self._running[key] = lead.future
        try:
            yield lead
        finally:
            lead.done(None)
            if self._running.get(key) is lead.future:
                del self._running[key]


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
