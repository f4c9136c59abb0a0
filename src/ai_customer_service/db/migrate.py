"""Applying and inspecting migrations (Alembic, driven programmatically).

Several replicas may start at once: on PostgreSQL the upgrade runs under an advisory lock; on
SQLite the ``BEGIN IMMEDIATE`` transaction serialises it.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 7_316_201_544  # arbitrary, constant: "ai-cs migrations"


def alembic_config(output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migration tree has no head")
    return head


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to head; a no-op when it already is."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        await conn.run_sync(_upgrade)


async def current_revision(conn: AsyncConnection) -> str | None:
    """The schema's revision, or ``None`` when nothing was migrated yet (one cheap query)."""
    try:
        result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:
        return None
    except OperationalError as exc:  # SQLite reports a missing table as operational
        if "no such table" in str(exc):
            return None
        raise
    return result.scalar_one_or_none()


def offline_sql() -> str:
    """The PostgreSQL DDL a DBA would apply with ``psql -f`` (from empty to head)."""
    buffer = io.StringIO()
    cfg = alembic_config(buffer)
    cfg.set_main_option("sqlalchemy.url", "postgresql://")
    command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()
