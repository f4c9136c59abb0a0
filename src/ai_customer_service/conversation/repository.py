"""Writes and locked reads of sessions and messages, inside the caller's transaction.

The webhook's per-message path (:func:`open_session`, :func:`read_state`, :func:`record_message`)
runs pre-built SQLAlchemy Core statements on the transaction's connection and works with plain rows
(:class:`OpenSession`, dicts), not ORM instances: the statements are built once (module level,
``bindparam``), so every execution hits the compiled cache, and no unit of work tracks the rows.
Three round trips per message after ``BEGIN``: lock, read, write (see :func:`record_message`).
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
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.conversation.models import Message, MessageDedup, Session
from ai_customer_service.conversation.states import AuthorType, Direction, SessionStatus
from ai_customer_service.db.statements import insert_ignore
from ai_customer_service.security import replay
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import ACTIVE_STATUSES, TicketStatus

_sessions: Table = Session.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]
_dedup: Table = MessageDedup.__table__  # type: ignore[assignment]
_tickets: Table = Ticket.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class OpenSession:
    """A customer's non-closed session as read under its row lock; the service edits it and
    :func:`record_message` writes it back."""

    id: uuid.UUID
    channel: str
    open_id: str
    user_id: str | None
    platform: str | None
    status: str
    low_confidence_streak: int
    last_message_at: datetime


@dataclass(slots=True)
class MessageState:
    """What one message needs to know about its session, read in one statement under the lock."""

    duplicate_response: dict[str, Any] | None  # the stored response of an already processed message
    recent_inbound: int  # customer messages since the rate-limit window started
    oldest_inbound: datetime | None  # the oldest of them
    active_ticket_id: uuid.UUID | None  # the ticket that still needs a human, if any
    latest_ticket_status: str | None  # the status of the session's most recent ticket, if any


# --- statements (built once) ----------------------------------------------------------------------

# constants are rendered into the SQL (not bound): better generic plans, no per-execution rendering
_CLOSED: ColumnClause[str] = literal_column(f"'{SessionStatus.CLOSED.value}'")
_INBOUND: ColumnClause[str] = literal_column(f"'{Direction.INBOUND.value}'")
_ONE: ColumnClause[int] = literal_column("1")

_LOCK_OPEN_SESSION = (
    select(
        _sessions.c.id,
        _sessions.c.channel,
        _sessions.c.open_id,
        _sessions.c.user_id,
        _sessions.c.platform,
        _sessions.c.status,
        _sessions.c.low_confidence_streak,
        _sessions.c.last_message_at,
    )
    .where(
        _sessions.c.channel == bindparam("channel"),
        _sessions.c.open_id == bindparam("open_id"),
        _sessions.c.source == bindparam("source"),
        # a constant, not a parameter: the generic plan of the prepared statement can then use the
        # partial unique index (WHERE status <> 'closed'); with a parameter it scans the table
        _sessions.c.status != _CLOSED,
    )
    .with_for_update()  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers
)

_SAVE_SESSION = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(
        user_id=bindparam("user_id"),
        platform=bindparam("platform"),
        status=bindparam("status"),
        low_confidence_streak=bindparam("low_confidence_streak"),
        last_message_at=bindparam("last_message_at"),
        updated_at=bindparam("updated_at"),
    )
)

_CLOSE_SESSION = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(  # user_id/platform stay as they were: the new message's values go to the next session
        status=SessionStatus.CLOSED.value,
        closed_at=bindparam("now"),
        close_reason=bindparam("reason"),
        updated_at=bindparam("now"),
    )
)

_SESSION_STATUS = select(_sessions.c.status).where(_sessions.c.id == bindparam("session_id"))

# executed with a list of rows: one round trip (asyncpg pipelines executemany; a multi-VALUES
# insert would be compiled again for every call, it is not cacheable)
_INSERT_MESSAGES = insert(_messages)

_INSERT_DEDUP = insert(_dedup)

_INSERT_SIGNATURE_USE = insert(replay.TABLE)


# a list of bound values would be an "expanding" parameter, rendered again at every execution
_ACTIVE_TICKET_STATUSES: list[ColumnClause[str]] = [
    literal_column(f"'{s.value}'") for s in TicketStatus if s in ACTIVE_STATUSES
]


def _state_statement(*, dedup: bool, rate_limit: bool) -> Any:
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
    ]
    stmt = select(*[c for c in columns if c is not None])
    return stmt.select_from(recent) if rate_limit else stmt


_READ_STATE = {
    (dedup, rate_limit): _state_statement(dedup=dedup, rate_limit=rate_limit)
    for dedup in (False, True)
    for rate_limit in (False, True)
}


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
    row = (await conn.execute(stmt, params)).one()._mapping
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


_MARK_NOTIFIED = (
    update(_dedup)
    .where(
        _dedup.c.source == bindparam("k_source"),
        _dedup.c.channel == bindparam("k_channel"),
        _dedup.c.message_id == bindparam("k_message_id"),
        or_(_dedup.c.notified_at.is_(None), _dedup.c.notified_at < bindparam("cutoff")),
    )
    .values(notified_at=bindparam("now"))
)


async def mark_notified(
    conn: AsyncConnection, *, source: str, channel: str, message_id: str, now: datetime, cutoff: datetime
) -> bool:
    """Record that ``message.deduplicated`` goes out now for this message, unless it went out after
    ``cutoff``; True when this call won (exactly one concurrent caller does)."""
    result = await conn.execute(
        _MARK_NOTIFIED,
        {"k_source": source, "k_channel": channel, "k_message_id": message_id, "now": now, "cutoff": cutoff},
    )
    return bool(result.rowcount)


# --- sessions -------------------------------------------------------------------------------------


async def lock_open_session(
    conn: AsyncConnection, channel: str, open_id: str, source: str = ""
) -> OpenSession | None:
    """The customer's non-closed session through ``source`` ("" = the generic webhook, else the
    platform's name), locked for this transaction (FOR UPDATE on PostgreSQL)."""
    params = {"channel": channel, "open_id": open_id, "source": source}
    row = (await conn.execute(_LOCK_OPEN_SESSION, params)).first()
    return None if row is None else OpenSession(*row)


async def open_session(
    tx: AsyncSession,
    conn: AsyncConnection,
    *,
    channel: str,
    open_id: str,
    user_id: str | None,
    now: datetime,
    platform: str | None = None,
) -> OpenSession:
    """Find or create the customer's one non-closed session through ``platform`` (``None``: the
    generic webhook), locked; safe under concurrency.

    A conversation belongs to the source that started it: the source is part of the session's
    identity ``(channel, open_id, source)``, so another source writing with the same ``open_id``
    gets its own conversation and never sees, changes or receives the events of this one.

    The partial unique index ``uq_cs_sessions_open_customer`` makes concurrent creators converge on
    one row: the losers' inserts do nothing and they lock the winner's row. A ``user_id`` change is
    applied to the returned row (written by :func:`record_message`).
    """
    source = platform or ""
    session = await lock_open_session(conn, channel, open_id, source)
    if session is None:
        await insert_ignore(
            tx,
            _sessions,
            {
                "id": uuid.uuid4(),
                "channel": channel,
                "open_id": open_id,
                "user_id": user_id,
                "platform": platform,
                "source": source,
                "status": SessionStatus.IDLE.value,
                "low_confidence_streak": 0,
                "created_at": now,
                "updated_at": now,
                "last_message_at": now,
            },
            index_elements=["channel", "open_id", "source"],
            index_where=text("status <> 'closed'"),
        )
        session = await lock_open_session(conn, channel, open_id, source)
        if session is None:  # pragma: no cover - the insert or a concurrent one must be visible
            raise RuntimeError("open session vanished after insert")
    if user_id and session.user_id != user_id:
        session.user_id = user_id
    return session


async def close_open_session(
    conn: AsyncConnection, session: OpenSession, *, now: datetime, reason: str
) -> str:
    """Close the locked session now (e.g. idle past the timeout); returns its previous status."""
    before = session.status
    await conn.execute(
        _CLOSE_SESSION,
        {
            "session_id": session.id,
            "now": now,
            "reason": reason,
        },
    )
    session.status = SessionStatus.CLOSED.value
    return before


async def session_status(conn: AsyncConnection, session_id: uuid.UUID) -> str:
    """The session's status as stored now (after a change made by another statement)."""
    return str((await conn.execute(_SESSION_STATUS, {"session_id": session_id})).scalar_one())


def close_session(session: Session, *, now: datetime, reason: str) -> str:
    """Close an ORM-loaded session (staff actions, the sweeper); returns its previous status."""
    before = session.status
    session.status = SessionStatus.CLOSED.value
    session.closed_at = now
    session.close_reason = reason
    session.updated_at = now
    return before


# --- one message's reads and writes ---------------------------------------------------------------


async def read_state(
    conn: AsyncConnection,
    session_id: uuid.UUID,
    *,
    source: str,
    channel: str,
    message_id: str | None,
    rate_limit_since: datetime | None,
) -> MessageState:
    """Dedup record, rate-limit count and ticket state of the locked session, in one statement.

    Run it only after :func:`open_session` has locked the row: a concurrent duplicate of the same
    customer then waits for the original to commit, and this statement (a new snapshot) sees its
    dedup record and its inbound message.
    """
    dedup = message_id is not None
    rate_limit = rate_limit_since is not None
    params: dict[str, Any] = {"session_id": session_id}
    if dedup:
        params.update(source=source, channel=channel, message_id=message_id)
    if rate_limit:
        params["since"] = rate_limit_since
    row = (await conn.execute(_READ_STATE[dedup, rate_limit], params)).one()._mapping
    oldest = row["oldest"] if rate_limit else None
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return MessageState(
        duplicate_response=row["duplicate_response"] if dedup else None,
        recent_inbound=int(row["n"]) if rate_limit else 0,
        oldest_inbound=oldest,
        active_ticket_id=row["active_ticket_id"],
        latest_ticket_status=row["latest_ticket_status"],
    )


def message_row(
    *,
    session_id: uuid.UUID,
    direction: Direction,
    author_type: AuthorType,
    content: str,
    now: datetime,
    author_id: str | None = None,
    channel_message_id: str | None = None,
    content_type: str = "text",
    truncated: bool = False,
    reply_to: str | None = None,
    sent_at: datetime | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    citations: list[dict[str, Any]] | None = None,
    decision: dict[str, Any] | None = None,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    """A complete ``cs_messages`` row with a new id (written by :func:`record_message`)."""
    return {
        "id": uuid.uuid4(),
        "session_id": session_id,
        "direction": direction.value,
        "author_type": author_type.value,
        "author_id": author_id,
        "channel_message_id": channel_message_id,
        "content": content,
        "content_type": content_type,
        "truncated": truncated,
        "reply_to": reply_to,
        "sent_at": sent_at,
        "intent": intent,
        "confidence": confidence,
        "citations": citations,
        "decision": decision,
        "latency_ms": latency_ms,
        "created_at": now,
    }


def dedup_row(
    *,
    source: str,
    channel: str,
    message_id: str,
    session_id: uuid.UUID,
    response: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The record of a processed ``(source, channel, message_id)`` with its response (unique key)."""
    return {
        "id": uuid.uuid4(),
        "source": source,
        "channel": channel,
        "message_id": message_id,
        "session_id": session_id,
        "response": response,
        "created_at": now,
        "notified_at": None,
    }


async def record_message(
    conn: AsyncConnection,
    session: OpenSession,
    *,
    now: datetime,
    messages: list[dict[str, Any]],
    audit_row: dict[str, Any],
    dedup: dict[str, Any] | None,
    signature_use: dict[str, Any] | None = None,
) -> None:
    """Write one processed message: its ``cs_messages`` rows (inbound, bot reply), its audit row,
    its dedup record, its v1 signature's claim (a plain insert: a claim by another path committed
    meanwhile is a unique violation, which the caller turns into 403 ``CS_AUTH_4035``) and the
    session's new state (last message ``now``).

    PostgreSQL: one statement (the inserts as data-modifying CTEs of the session ``UPDATE``), one
    round trip. SQLite, which has no data-modifying CTEs: the same inserts one after the other.
    """
    session.last_message_at = now
    params = {
        "session_id": session.id,
        "user_id": session.user_id,
        "platform": session.platform,
        "status": session.status,
        "low_confidence_streak": session.low_confidence_streak,
        "last_message_at": now,
        "updated_at": now,
    }
    if conn.dialect.name != "postgresql":
        await conn.execute(_INSERT_MESSAGES, messages)
        await conn.execute(audit.INSERT, audit_row)
        if dedup is not None:
            await conn.execute(_INSERT_DEDUP, dedup)
        if signature_use is not None:
            await conn.execute(_INSERT_SIGNATURE_USE, signature_use)
        await conn.execute(_SAVE_SESSION, params)
        return
    for i, message in enumerate(messages):
        params.update(_suffixed(message, i))
    params.update(_suffixed(audit_row, "a"))
    if dedup is not None:
        params.update(_suffixed(dedup, "d"))
    if signature_use is not None:
        params.update(_suffixed(signature_use, "s"))
    statement = _record_statement(len(messages), dedup is not None, signature_use is not None)
    await conn.execute(statement, params)


def _suffixed(row: dict[str, Any], suffix: object) -> dict[str, Any]:
    return {f"{key}__{suffix}": value for key, value in row.items()}


def _insert_cte(table: Table, suffix: object, name: str) -> Any:
    values = {c.key: bindparam(f"{c.key}__{suffix}", type_=c.type) for c in table.columns}
    return insert(table).values(values).cte(name)


@functools.cache
def _record_statement(messages: int, dedup: bool, signature: bool = False) -> Any:
    """``WITH m0 AS (INSERT ...), [m1 AS (INSERT ...),] a AS (INSERT ...), [d AS (INSERT ...)]
    [s AS (INSERT ...)] UPDATE cs_sessions ...`` (PostgreSQL), built once per shape."""
    ctes = [_insert_cte(_messages, i, f"m{i}") for i in range(messages)]
    ctes.append(_insert_cte(audit.TABLE, "a", "a"))
    if dedup:
        ctes.append(_insert_cte(_dedup, "d", "d"))
    if signature:
        ctes.append(_insert_cte(replay.TABLE, "s", "s"))
    return _SAVE_SESSION.add_cte(*ctes)


async def session_open_id(tx: AsyncSession, session_id: uuid.UUID) -> str | None:
    """The customer a session belongs to (``None`` when the session does not exist)."""
    stmt = select(Session.open_id).where(Session.id == session_id)
    return (await tx.execute(stmt)).scalar_one_or_none()


async def dedup_response(
    tx: AsyncSession, *, source: str, channel: str, message_id: str
) -> dict[str, Any] | None:
    stmt = select(MessageDedup.response).where(
        MessageDedup.source == source, MessageDedup.channel == channel, MessageDedup.message_id == message_id
    )
    return (await tx.execute(stmt)).scalar_one_or_none()
