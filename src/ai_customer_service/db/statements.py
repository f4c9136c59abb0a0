"""The few dialect-specific statements, in one place: insert-or-ignore on a (partial) unique key.

Both SQLite (3.24+) and PostgreSQL support ``INSERT ... ON CONFLICT (...) [WHERE ...] DO NOTHING``;
only the SQLAlchemy construct differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, TextClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(tx: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT construct (both support ON CONFLICT ... DO NOTHING)."""
    if tx.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore_construct(
    dialect: str,
    table: Table,
    *,
    index_elements: Sequence[str],
    index_where: ColumnElement[bool] | TextClause | None = None,
) -> postgresql.Insert | sqlite.Insert:
    """The insert-or-ignore statement of ``dialect`` without values (the caller adds bound ones and
    a RETURNING), for a statement built once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(index_elements), index_where=index_where)


async def insert_ignore(
    tx: AsyncSession,
    table: Table,
    values: dict[str, Any],
    *,
    index_elements: Sequence[str],
    index_where: ColumnElement[bool] | TextClause | None = None,
) -> bool:
    """Insert ``values`` unless the unique key already exists; True when this call inserted the row.

    On PostgreSQL a concurrent, uncommitted insert of the same key makes this wait for that
    transaction: if it commits, this returns False; if it rolls back, this inserts.
    """
    stmt = (
        _insert(tx, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(index_elements), index_where=index_where)
        .returning(table.c.id)
    )
    result = await tx.execute(stmt)
    return result.first() is not None


async def insert_many_ignore(
    tx: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], *, index_elements: Sequence[str]
) -> None:
    """Insert ``rows``, skipping any whose unique key already exists (one statement)."""
    if not rows:
        return
    dialect = tx.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await tx.execute(
        insert(table).values(list(rows)).on_conflict_do_nothing(index_elements=list(index_elements))
    )


async def increment_counter(
    tx: AsyncSession, table: Table, values: dict[str, Any], *, index_elements: Sequence[str]
) -> int:
    """Add one to the ``count`` of the row with this unique key (inserting it at 1); the new count.

    One statement on both dialects (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so
    concurrent increments from any number of processes are all counted.
    """
    insert = _insert(tx, table)
    stmt = (
        insert.values(**values, count=1)
        .on_conflict_do_update(index_elements=list(index_elements), set_={"count": table.c.count + 1})
        .returning(table.c.count)
    )
    return int((await tx.execute(stmt)).scalar_one())
