"""Helpers for migration tests: moving a connection to a revision, and ids in the dialect's form."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ai_customer_service.db.migrate import alembic_config


def to_revision(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    """For ``AsyncConnection.run_sync``: upgrade (or downgrade) the connection's database to
    ``revision`` inside the caller's transaction."""

    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)

    return run


def stable_id(conn: AsyncConnection, name: str) -> object:
    """A stable id for ``name`` in the form the dialect stores (a UUID on PostgreSQL, hex text on SQLite)."""
    value = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    return value if conn.dialect.name == "postgresql" else value.hex


async def insert_row(conn: AsyncConnection, table: str, **values: object) -> None:
    """Insert one row with plain SQL (the models may be ahead of the revision the test stands at)."""
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    await conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)
