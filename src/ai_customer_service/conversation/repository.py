"""Writes and locked reads of sessions and messages, inside the caller's transaction.

This module is the only writer of a session's status: every change goes through one of the
functions under "session life cycle", each checked against the table in :mod:`.states`.

The webhook's per-message path (:func:`open_session`, then ``webhook.facts.read_state``, then
:func:`record_message`) runs pre-built SQLAlchemy Core statements on the transaction's connection and
works with plain rows (:class:`OpenSession`, dicts), not ORM instances: the statements are built once
(module level, ``bindparam``), so every execution hits the compiled cache, and no unit of work tracks
the rows. Three round trips per message after ``BEGIN``: lock, read, write (see :func:`record_message`;
the transaction's live-stream rows go into the write); a first contact adds the session's insert.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    Table,
    and_,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.conversation.models import Message, MessageDedup, Session
from ai_customer_service.conversation.states import (
    TRANSITIONS,
    AuthorType,
    Direction,
    SessionAction,
    SessionStatus,
    next_status,
)
from ai_customer_service.db import driver
from ai_customer_service.db.statements import insert_ignore_construct
from ai_customer_service.errors import NotFound
from ai_customer_service.live import LIVE_TABLE, insert_live
from ai_customer_service.security import replay

_sessions: Table = Session.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]
_dedup: Table = MessageDedup.__table__  # type: ignore[assignment]


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

# executed with a list of rows: one round trip (asyncpg pipelines executemany; a multi-VALUES
# insert would be compiled again for every call, it is not cacheable)
_INSERT_MESSAGES = insert(_messages)

_INSERT_DEDUP = insert(_dedup)

_INSERT_SIGNATURE_USE = insert(replay.TABLE)


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
    row = await driver.fetch_one(conn, _LOCK_OPEN_SESSION, params)
    return None if row is None else OpenSession(*row)


async def open_session(
    conn: AsyncConnection,
    *,
    channel: str,
    open_id: str,
    user_id: str | None,
    now: datetime,
    platform: str | None = None,
    source: str | None = None,
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
    source = (platform or "") if source is None else source  # a widget site's: conversation.sources
    session = await lock_open_session(conn, channel, open_id, source)
    if session is None:
        # first contact: insert it; the RETURNING row is ours (uncommitted, so nobody else can lock
        # it). Nothing returned: a concurrent creator won, and this waited for its commit: lock its row
        params = {
            "id": uuid.uuid4(),
            "channel": channel,
            "open_id": open_id,
            "user_id": user_id,
            "platform": platform,
            "source": source,
            "now": now,
        }
        row = await driver.fetch_one(conn, _create_session_statement(conn.dialect.name), params)
        session = (
            OpenSession(*row) if row is not None else await lock_open_session(conn, channel, open_id, source)
        )
        if session is None:  # pragma: no cover - the insert or a concurrent one must be visible
            raise RuntimeError("open session vanished after insert")
    if user_id and session.user_id != user_id:
        session.user_id = user_id
    return session


@functools.cache
def _create_session_statement(dialect: str) -> Any:
    """``INSERT INTO cs_sessions ... ON CONFLICT (channel, open_id, source) WHERE status <> 'closed'
    DO NOTHING RETURNING`` the columns of :class:`OpenSession`, built once per dialect."""
    now = bindparam("now", type_=_sessions.c.created_at.type)
    values: dict[str, Any] = {
        key: bindparam(key, type_=_sessions.c[key].type)
        for key in ("id", "channel", "open_id", "user_id", "platform", "source")
    }
    values.update(
        status=literal_column(f"'{SessionStatus.IDLE.value}'"),
        low_confidence_streak=literal_column("0"),
        created_at=now,
        updated_at=now,
        last_message_at=now,
    )
    return (
        insert_ignore_construct(
            dialect,
            _sessions,
            index_elements=["channel", "open_id", "source"],
            index_where=text("status <> 'closed'"),
        )
        .values(values)
        .returning(*_LOCK_OPEN_SESSION.selected_columns)
    )


# --- session life cycle: the only writes of a session's status -------------------------------------


def _statuses(action: SessionAction) -> list[str]:
    """The statuses ``action`` changes (for conditional updates), in a stable order."""
    return sorted(s.value for s in TRANSITIONS[action].changing)


_HAND_BACK = (
    update(_sessions)
    .where(
        _sessions.c.id == bindparam("session_id"), _sessions.c.status.in_(_statuses(SessionAction.HAND_BACK))
    )
    .values(
        status=TRANSITIONS[SessionAction.HAND_BACK].target.value,
        low_confidence_streak=0,
        updated_at=bindparam("now"),
    )
)

_TOUCH = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(last_message_at=bindparam("now"), updated_at=bindparam("now"))
)

_RETURN_TO_HANDOFF = (
    update(_sessions)
    .where(
        _sessions.c.id == bindparam("session_id"), _sessions.c.status.in_(_statuses(SessionAction.HAND_OFF))
    )
    .values(status=TRANSITIONS[SessionAction.HAND_OFF].target.value, updated_at=bindparam("now"))
)


async def lock_session(tx: AsyncSession, session_id: uuid.UUID) -> Session:
    """The session (ORM), locked for this transaction (``FOR UPDATE`` on PostgreSQL); 404
    ``CS_SES_4001`` when there is none."""
    stmt = select(Session).where(Session.id == session_id).with_for_update()
    session = (await tx.execute(stmt)).scalar_one_or_none()
    if session is None:
        raise NotFound("session not found", "CS_SES_4001")
    return session


async def touch(tx: AsyncSession, session_id: uuid.UUID, *, now: datetime) -> None:
    """A message was written to the session outside the webhook's path (an agent's reply)."""
    await tx.execute(_TOUCH, {"session_id": session_id, "now": now})


async def close_open_session(
    conn: AsyncConnection, session: OpenSession, *, now: datetime, reason: str
) -> str:
    """Close the locked session now, quiet for too long (the sweeper has not closed it yet);
    returns its previous status."""
    before = session.status
    target = next_status(before, SessionAction.TIME_OUT)
    await conn.execute(_CLOSE_SESSION, {"session_id": session.id, "now": now, "reason": reason})
    session.status = target.value
    return before


def close_session(session: Session, *, now: datetime, reason: str) -> str:
    """Close an ORM-loaded, locked session (staff); returns its previous status. 409
    ``CS_SES_4091`` when it is closed already."""
    before = session.status
    session.status = next_status(before, SessionAction.CLOSE).value
    session.closed_at = now
    session.close_reason = reason
    session.updated_at = now
    return before


def hand_off(session: Session, *, now: datetime) -> str:
    """Give an ORM-loaded, locked session to a human (a ticket was just opened for it); returns its
    previous status. 409 ``CS_SES_4091`` when it is closed."""
    before = session.status
    session.status = next_status(before, SessionAction.HAND_OFF).value
    session.updated_at = now
    return before


async def hand_back(tx: AsyncSession, session_id: uuid.UUID, *, now: datetime) -> None:
    """Return the session to the bot (its ticket no longer needs a human), if a human has it; the
    caller holds the session's lock and has checked that no other ticket of it needs a human."""
    await tx.execute(_HAND_BACK, {"session_id": session_id, "now": now})


async def return_to_handoff(tx: AsyncSession, session_id: uuid.UUID, *, now: datetime) -> None:
    """A ticket of the session was reopened: silence the bot again (a closed session stays closed,
    one already with a human is left as it is)."""
    await tx.execute(_RETURN_TO_HANDOFF, {"session_id": session_id, "now": now})


async def close_idle(tx: AsyncSession, *, cutoff: datetime, now: datetime, limit: int) -> list[uuid.UUID]:
    """Close up to ``limit`` sessions the bot owns that have been quiet since before ``cutoff``
    (the inactivity sweep); returns their ids. One conditional UPDATE, so several processes may
    sweep at once without conflict."""
    sweepable = _statuses(SessionAction.TIME_OUT)
    quiet = and_(_sessions.c.status.in_(sweepable), _sessions.c.last_message_at < cutoff)
    ids = list((await tx.execute(select(_sessions.c.id).where(quiet).limit(limit))).scalars())
    if not ids:
        return []
    result = await tx.execute(
        update(_sessions)
        .where(_sessions.c.id.in_(ids), quiet)
        .values(
            status=TRANSITIONS[SessionAction.TIME_OUT].target.value,
            closed_at=now,
            updated_at=now,
            close_reason="timeout",
        )
        .returning(_sessions.c.id)
    )
    return list(result.scalars())


# --- one message's writes ------------------------------------------------------------------------


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
    status: str,
    low_confidence_streak: int,
    now: datetime,
    messages: list[dict[str, Any]],
    audit_row: dict[str, Any],
    dedup: dict[str, Any] | None,
    signature_use: dict[str, Any] | None = None,
    live_events: list[dict[str, Any]] | None = None,
) -> None:
    """Write one processed message: its ``cs_messages`` rows (inbound, bot reply), its audit row,
    its dedup record, its v1 signature's claim (a plain insert: a claim by another path committed
    meanwhile is a unique violation, which the caller turns into 403 ``CS_AUTH_4035``) and the
    session's new state: ``status`` (where the message's plan moved it, checked against
    :mod:`.states`), the low-confidence streak and the last message ``now``; and the transaction's
    live-stream rows (``live.live_row``, in ``seq`` order; the unit of work's ``take_live``).

    PostgreSQL: one statement (the inserts as data-modifying CTEs of the session ``UPDATE``; the
    live rows as one multi-row insert, so their ``seq`` follow the list's order), one round trip.
    SQLite, which has no data-modifying CTEs: the same inserts one after the other.
    """
    session.status = status
    session.low_confidence_streak = low_confidence_streak
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
        await insert_live(conn, live_events or [])
        return
    for i, message in enumerate(messages):
        params.update(_suffixed(message, i))
    params.update(_suffixed(audit_row, "a"))
    if dedup is not None:
        params.update(_suffixed(dedup, "d"))
    if signature_use is not None:
        params.update(_suffixed(signature_use, "s"))
    live_events = live_events or []
    for i, row in enumerate(live_events):
        params.update(_suffixed(row, f"l{i}"))
    statement = _record_statement(
        len(messages), dedup is not None, signature_use is not None, len(live_events)
    )
    await driver.execute(conn, statement, params)


def _suffixed(row: dict[str, Any], suffix: object) -> dict[str, Any]:
    return {f"{key}__{suffix}": value for key, value in row.items()}


def _insert_cte(table: Table, suffix: object, name: str) -> Any:
    values = {c.key: bindparam(f"{c.key}__{suffix}", type_=c.type) for c in table.columns}
    return insert(table).values(values).cte(name)


def _live_cte(rows: int) -> Any:
    """``INSERT INTO cs_live_events (...) SELECT ... UNION ALL SELECT ...``: one statement, ``seq``
    taken in row order. Not a multi-row ``VALUES``: SQLAlchemy cannot cache that, it would be
    compiled again at every execution."""
    columns = [c for c in LIVE_TABLE.columns if c.key != "seq"]
    selects = [select(*[bindparam(f"{c.key}__l{i}", type_=c.type) for c in columns]) for i in range(rows)]
    source = selects[0] if rows == 1 else union_all(*selects)
    return insert(LIVE_TABLE).from_select([c.key for c in columns], source).cte("l")


@functools.cache
def _record_statement(messages: int, dedup: bool, signature: bool = False, live: int = 0) -> Any:
    """``WITH m0 AS (INSERT ...), [m1 AS (INSERT ...),] a AS (INSERT ...), [d AS (INSERT ...)]
    [s AS (INSERT ...)] [l AS (INSERT ... VALUES (...), ...)] UPDATE cs_sessions ...`` (PostgreSQL),
    built once per shape."""
    ctes = [_insert_cte(_messages, i, f"m{i}") for i in range(messages)]
    ctes.append(_insert_cte(audit.TABLE, "a", "a"))
    if dedup:
        ctes.append(_insert_cte(_dedup, "d", "d"))
    if signature:
        ctes.append(_insert_cte(replay.TABLE, "s", "s"))
    if live:
        ctes.append(_live_cte(live))
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
