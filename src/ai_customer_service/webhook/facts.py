"""The reads one customer message needs, on pre-built Core statements: the lock-free pre-read before
any analysis or transaction (:func:`pre_read`), and the facts read under the session lock
(:func:`read_state`). They join the conversation's tables with its tickets, so they live here, above
both domains (``conversation`` never reads tickets; ``ticket`` may read conversations).
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ai_customer_service.conversation.models import Message, MessageDedup, Session
from ai_customer_service.conversation.states import Direction, SessionStatus
from ai_customer_service.db import driver
from ai_customer_service.security import replay
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import ACTIVE_STATUSES, TicketStatus

_sessions: Table = Session.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]
_dedup: Table = MessageDedup.__table__  # type: ignore[assignment]
_tickets: Table = Ticket.__table__  # type: ignore[assignment]

# constants are rendered into the SQL (not bound): better generic plans, no per-execution rendering
_CLOSED: ColumnClause[str] = literal_column(f"'{SessionStatus.CLOSED.value}'")
_INBOUND: ColumnClause[str] = literal_column(f"'{Direction.INBOUND.value}'")
_RESOLVED: ColumnClause[str] = literal_column(f"'{TicketStatus.RESOLVED.value}'")
_ONE: ColumnClause[int] = literal_column("1")

# a list of bound values would be an "expanding" parameter, rendered again at every execution
_ACTIVE_TICKET_STATUSES: list[ColumnClause[str]] = [
    literal_column(f"'{s.value}'") for s in TicketStatus if s in ACTIVE_STATUSES
]


@dataclass(slots=True)
class MessageState:
    """What one message needs to know about its session, read in one statement under the lock."""

    duplicate_response: dict[str, Any] | None  # the stored response of an already processed message
    recent_inbound: int  # customer messages since the rate-limit window started
    oldest_inbound: datetime | None  # the oldest of them
    active_ticket_id: uuid.UUID | None  # the ticket that still needs a human, if any
    latest_ticket_status: str | None  # the status of the session's most recent ticket, if any
    # the ticket a customer message would reopen: resolved within the reopen window (the most
    # recently resolved one), if any and if the window is open
    reopenable_ticket_id: uuid.UUID | None = None


@functools.cache
def _state_statement(*, dedup: bool, rate_limit: bool, reopen: bool) -> Any:
    session_id = bindparam("session_id", type_=_sessions.c.id.type)
    recent = (
        select(func.count().label("n"), func.min(_messages.c.created_at).label("oldest"))
        .where(
            _messages.c.session_id == session_id,
            _messages.c.direction == _INBOUND,
            _messages.c.created_at > bindparam("since", type_=_messages.c.created_at.type),
        )
        .subquery("recent")
    )
    columns: list[Any] = [
        (
            select(_dedup.c.response)
            .where(
                _dedup.c.source == bindparam("source"),
                _dedup.c.channel == bindparam("channel"),
                _dedup.c.message_id == bindparam("message_id"),
            )
            .scalar_subquery()
            .label("duplicate_response")
            if dedup
            else None
        ),
        recent.c.n if rate_limit else None,
        recent.c.oldest if rate_limit else None,
        select(_tickets.c.id)
        .where(_tickets.c.session_id == session_id, _tickets.c.status.in_(_ACTIVE_TICKET_STATUSES))
        .scalar_subquery()
        .label("active_ticket_id"),
        select(_tickets.c.status)
        .where(_tickets.c.session_id == session_id)
        .order_by(_tickets.c.created_at.desc())
        .limit(_ONE)
        .scalar_subquery()
        .label("latest_ticket_status"),
        (
            select(_tickets.c.id)
            .where(
                _tickets.c.session_id == session_id,
                _tickets.c.status == _RESOLVED,
                _tickets.c.resolved_at >= bindparam("reopen_since", type_=_tickets.c.resolved_at.type),
            )
            .order_by(_tickets.c.resolved_at.desc())
            .limit(_ONE)
            .scalar_subquery()
            .label("reopenable_ticket_id")
            if reopen
            else None
        ),
    ]
    stmt = select(*[c for c in columns if c is not None])
    return stmt.select_from(recent) if rate_limit else stmt


async def read_state(
    conn: AsyncConnection,
    session_id: uuid.UUID,
    *,
    source: str,
    channel: str,
    message_id: str | None,
    rate_limit_since: datetime | None,
    reopen_since: datetime | None = None,
) -> MessageState:
    """Dedup record, rate-limit count and ticket state of the locked session, in one statement.

    Run it only after :func:`conversation.repository.open_session` has locked the row: a concurrent
    duplicate of the same customer then waits for the original to commit, and this statement (a new
    snapshot) sees its dedup record and its inbound message.
    """
    dedup = message_id is not None
    rate_limit = rate_limit_since is not None
    reopen = reopen_since is not None
    params: dict[str, Any] = {"session_id": session_id}
    if dedup:
        params.update(source=source, channel=channel, message_id=message_id)
    if rate_limit:
        params["since"] = rate_limit_since
    if reopen:
        params["reopen_since"] = reopen_since
    statement = _state_statement(dedup=dedup, rate_limit=rate_limit, reopen=reopen)
    row = await driver.fetch_mapping(conn, statement, params)
    assert row is not None  # a SELECT without FROM: always one row
    oldest = row["oldest"] if rate_limit else None
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    reopenable = row["reopenable_ticket_id"] if reopen else None
    return MessageState(
        duplicate_response=row["duplicate_response"] if dedup else None,
        recent_inbound=int(row["n"]) if rate_limit else 0,
        oldest_inbound=oldest,
        active_ticket_id=row["active_ticket_id"],
        latest_ticket_status=row["latest_ticket_status"],
        reopenable_ticket_id=None if reopenable is None else uuid.UUID(str(reopenable)),
    )


@dataclass(slots=True)
class PreRead:
    """What the webhook learns before any analysis or transaction, in one indexed read."""

    duplicate_response: dict[str, Any] | None  # the stored response of an already processed message
    notified_at: datetime | None  # when message.deduplicated last went out for it
    signature_target: str | None  # where the request's v1 signature was first accepted, if anywhere
    human_owns: bool  # the customer's open session has a ticket a human owns (or one it would reopen)


@functools.cache
def _pre_read_statement(*, dedup: bool, signature: bool, reopen: bool) -> Any:
    """``SELECT (dedup response), (its notified_at), (signature's first target), EXISTS(ticket a
    human owns in the customer's open session)``: scalar subqueries on unique or covering indexes
    (``uq_cs_message_dedup_*``, the signature's primary key, ``uq_cs_sessions_open_customer`` then
    ``ix_cs_tickets_session_id_created_at``)."""
    key = and_(
        _dedup.c.source == bindparam("source"),
        _dedup.c.channel == bindparam("channel"),
        _dedup.c.message_id == bindparam("message_id"),
    )
    owned: ColumnElement[bool] = _tickets.c.status.in_(_ACTIVE_TICKET_STATUSES)
    if reopen:  # a message soon after resolution reopens the ticket: a human will own it again
        owned = or_(
            owned,
            and_(
                _tickets.c.status == literal_column(f"'{TicketStatus.RESOLVED.value}'"),
                _tickets.c.resolved_at >= bindparam("reopen_since", type_=_tickets.c.resolved_at.type),
            ),
        )
    human = exists(
        select(_ONE)
        .select_from(_tickets.join(_sessions, _sessions.c.id == _tickets.c.session_id))
        .where(
            _sessions.c.channel == bindparam("channel"),
            _sessions.c.open_id == bindparam("open_id"),
            _sessions.c.source == bindparam("source"),
            _sessions.c.status != _CLOSED,
            owned,
        )
    )
    columns: list[Any] = [human.label("human_owns")]
    if dedup:
        columns.append(select(_dedup.c.response).where(key).scalar_subquery().label("duplicate_response"))
        columns.append(select(_dedup.c.notified_at).where(key).scalar_subquery().label("notified_at"))
    if signature:
        columns.append(replay.TARGET_OF.scalar_subquery().label("signature_target"))
    return select(*columns)


async def pre_read(
    conn: AsyncConnection,
    *,
    source: str,
    channel: str,
    open_id: str,
    message_id: str | None,
    signature_digest: str | None,
    reopen_since: datetime | None,
) -> PreRead:
    """One statement, outside any transaction and without locks: the message's dedup record, where
    its v1 signature was first used, and whether a human owns the customer's conversation. A hint
    only: the transaction re-reads all of it under the session lock."""
    params: dict[str, Any] = {"source": source, "channel": channel, "open_id": open_id}
    if message_id is not None:
        params["message_id"] = message_id
    if signature_digest is not None:
        params["signature_digest"] = signature_digest
    if reopen_since is not None:
        params["reopen_since"] = reopen_since
    stmt = _pre_read_statement(
        dedup=message_id is not None, signature=signature_digest is not None, reopen=reopen_since is not None
    )
    row = await driver.fetch_mapping(conn, stmt, params)
    assert row is not None  # a SELECT without FROM: always one row
    notified = row["notified_at"] if message_id is not None else None
    if isinstance(notified, str):  # SQLite scalar subqueries bypass the column type
        notified = datetime.fromisoformat(notified)
    if notified is not None and notified.tzinfo is None:
        notified = notified.replace(tzinfo=UTC)
    response = row["duplicate_response"] if message_id is not None else None
    if isinstance(response, str):
        response = json.loads(response)
    return PreRead(
        duplicate_response=response,
        notified_at=notified,
        signature_target=row["signature_target"] if signature_digest is not None else None,
        human_owns=bool(row["human_owns"]),
    )
