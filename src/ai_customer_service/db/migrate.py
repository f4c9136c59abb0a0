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
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ai_customer_service.logs import get_logger

log = get_logger(__name__)

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


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision of this build's migration tree (read once, like :func:`head_revision`)."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def is_newer(revision: str | None) -> bool:
    """True when ``revision`` is not in this build's migration tree, i.e. a newer release migrated
    the database (migrations only add within a minor version, so this build still works on it)."""
    return revision is not None and revision not in known_revisions()


async def upgrade(engine: AsyncEngine) -> str | None:
    """Bring the schema to head; a no-op when it already is. On a schema migrated by a newer release
    (the runbook's rollback), change nothing and return that revision (``None`` otherwise)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        # inside the transaction: look before reading, a failed read would abort it on PostgreSQL
        has_version = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
        revision = await current_revision(conn) if has_version else None
        if is_newer(revision):
            log.warning(
                "database schema is newer than this build; running on it without migrating",
                revision=revision,
                head=head_revision(),
            )
            return revision
        await conn.run_sync(_upgrade)
        head = head_revision()
        if revision != head:
            log.info("database schema migrated", from_revision=revision, to_revision=head)
    return None


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
