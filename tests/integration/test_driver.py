"""``db.driver``: pre-built statements run by the driver join SQLAlchemy's transaction, process their
values as SQLAlchemy would, and fail with SQLAlchemy's exceptions (both stores; on SQLite they are
plain ``conn.execute``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from ai_customer_service.conversation.models import MessageDedup
from ai_customer_service.db import driver
from ai_customer_service.db.engine import Database

_dedup = MessageDedup.__table__
_INSERT = insert(_dedup)
_READ = select(_dedup.c.id, _dedup.c.response, _dedup.c.created_at, _dedup.c.session_id).where(
    _dedup.c.message_id == bindparam("message_id")
)


def _row(message_id: str, response: dict[str, object]) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "source": "",
        "channel": "widget",
        "message_id": message_id,
        "session_id": None,
        "response": response,
        "created_at": datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
        "notified_at": None,
    }


async def _read(db: Database, message_id: str) -> dict[str, object] | None:
    async with db.single_read() as conn:
        return await driver.fetch_mapping(conn, _READ, {"message_id": message_id})


async def test_commit_keeps_and_rollback_drops_what_the_driver_wrote(db: Database) -> None:
    kept = _row("kept", {"reply": "你好", "n": [1, 2]})
    async with db.core_transaction() as conn:
        await driver.execute(conn, _INSERT, kept)
    with pytest.raises(RuntimeError):
        async with db.core_transaction() as conn:
            await driver.execute(conn, _INSERT, _row("dropped", {}))
            raise RuntimeError("abandon the transaction")
    assert await _read(db, "dropped") is None
    found = await _read(db, "kept")
    assert found is not None
    # values come back as SQLAlchemy would give them: JSON decoded, UUID, aware UTC datetime
    assert found["response"] == {"reply": "你好", "n": [1, 2]}
    assert found["id"] == kept["id"] and isinstance(found["id"], uuid.UUID)
    assert found["created_at"] == kept["created_at"] and found["created_at"].tzinfo is not None  # type: ignore[union-attr]
    assert found["session_id"] is None


async def test_a_unique_violation_is_sqlalchemys_integrity_error_and_the_connection_stays_usable(
    db: Database,
) -> None:
    async with db.core_transaction() as conn:
        await driver.execute(conn, _INSERT, _row("twice", {}))
    with pytest.raises(IntegrityError):
        async with db.core_transaction() as conn:
            await driver.execute(conn, _INSERT, _row("twice", {}))
    for _ in range(3):  # the pool's connections still work after the failed transaction
        async with db.core_transaction() as conn:
            assert await driver.fetch_one(conn, _READ, {"message_id": "twice"}) is not None


async def test_a_statement_the_driver_runs_first_is_inside_the_transaction(db: Database) -> None:
    """The driver begins the transaction itself when its statement is the first one (as SQLAlchemy's
    cursor would): a second connection does not see the row before the commit."""
    async with db.core_transaction() as conn:
        await driver.execute(conn, _INSERT, _row("pending", {}))
        assert await _read(db, "pending") is None
    assert await _read(db, "pending") is not None


def test_expanding_parameters_are_refused() -> None:
    from sqlalchemy.dialects import postgresql

    stmt = select(_dedup.c.id).where(_dedup.c.message_id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        driver.CompiledStatement(stmt, postgresql.asyncpg.dialect())  # type: ignore[attr-defined]


async def test_none_is_stored_as_sqlalchemy_stores_it(db: Database) -> None:
    """A JSON column's None is JSON ``null`` through SQLAlchemy; the driver stores the same."""
    from sqlalchemy import text

    async with db.core_transaction() as conn:
        await driver.execute(conn, _INSERT, _row("by-driver", {}) | {"response": None})
        await conn.execute(_INSERT, _row("by-sqlalchemy", {}) | {"response": None})
    async with db.reader() as tx:
        rows = await tx.execute(
            text("SELECT message_id, response IS NULL FROM cs_message_dedup WHERE message_id LIKE 'by-%'")
        )
        stored = dict(rows.all())
    assert stored["by-driver"] == stored["by-sqlalchemy"]
