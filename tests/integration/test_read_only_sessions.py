"""Plain reads run on read-only sessions: while a unit of work holds the writer lock (on SQLite its
``BEGIN IMMEDIATE``), every read path still answers instead of queueing behind it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from ai_customer_service.audit import queries as audit_queries
from ai_customer_service.auth import service as principals
from ai_customer_service.conversation import queries as conversation_queries
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import NotFound
from ai_customer_service.knowledge import queries as kb_queries
from ai_customer_service.outbox import service as outbox
from ai_customer_service.outbox.repository import EventFilter
from ai_customer_service.ticket import queries as ticket_queries

Read = Callable[[Database], Awaitable[Any]]

READS: dict[str, Read] = {
    "session": lambda db: conversation_queries.read_session(db, uuid.uuid4()),
    "session messages": lambda db: conversation_queries.read_messages(db, uuid.uuid4(), page=1, page_size=10),
    "kb entries": lambda db: kb_queries.read_entries(db, status=None, query=None, page=1, page_size=10),
    "kb entry": lambda db: kb_queries.read_entry(db, "no-such-entry"),
    "ticket stats": lambda db: ticket_queries.ticket_stats(db),
    "outbox events": lambda db: outbox.list_events(db, EventFilter(), page=1, page_size=10),
    "outbox event": lambda db: outbox.get_event(db, uuid.uuid4()),
    "audit": lambda db: audit_queries.list_audit(db, object_type=None, object_id=None),
    "principals": lambda db: principals.list_principals(db),
}


@pytest.mark.parametrize("name", list(READS))
async def test_a_read_answers_while_a_writer_holds_the_lock(db: Database, name: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(text("UPDATE cs_sessions SET updated_at = updated_at"))  # the writer lock
        # a read that opened a write transaction would wait for this one (the guard only ends a
        # hang: it fails the test rather than waiting for the busy timeout); NotFound: the read ran
        with contextlib.suppress(NotFound):
            await asyncio.wait_for(READS[name](db), timeout=10)
