"""Applying and inspecting migrations (Alembic, driven programmatically).

Several replicas may start at once: on PostgreSQL the upgrade runs under an advisory lock; on
SQLite the ``BEGIN IMMEDIATE`` transaction serialises it. In the same transaction: a database the
original Go service created is adopted first (:mod:`ai_customer_service.db.adopt`), and the original's
``cs_schema_migrations`` bookkeeping is brought up to date (:mod:`ai_customer_service.db.schema_versions`).
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

from ai_customer_service.db import adopt
from ai_customer_service.db.schema_versions import all_versions, record_versions
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
    (the runbook's rollback), change nothing and return that revision (``None`` otherwise).

    A database of the original is adopted in the same transaction (all or nothing): an interrupted
    run leaves it as it was. Raises :class:`~ai_customer_service.db.adopt.AdoptionError` when a
    database cannot be adopted."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # a migration (or waiting for another process's) may take longer than a request may
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
                await conn.execute(text(f"SET LOCAL {name} = 0"))
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
        adopting = not has_version and await adopt.is_original(conn)
        if adopting:
            plan = await adopt.plan(conn)
            if plan.unknown_event_types:
                raise adopt.AdoptionError(
                    f"the original's outbox holds event types this build does not know: "
                    f"{', '.join(plan.unknown_event_types)}; deliver or delete them with the original first"
                )
            log.warning("adopting the original's database", tables=plan.tables, archive=adopt.ARCHIVE)
            await adopt.move_aside(conn)
        await conn.run_sync(_upgrade)
        if adopting:
            counts = await adopt.copy_rows(conn)
            log.warning("original database adopted", archive=adopt.ARCHIVE, **counts)
        added = await record_versions(conn)
        head = head_revision()
        if revision != head:
            log.info("database schema migrated", from_revision=revision, to_revision=head)
        elif added:
            log.info("cs_schema_migrations completed", versions_added=added)
    return None


async def dry_run(engine: AsyncEngine) -> list[str]:
    """What :func:`upgrade` would do, as lines for a human; reads only, and rolls back."""
    async with engine.connect() as conn:
        try:
            return await _describe(conn)
        finally:
            await conn.rollback()


async def _describe(conn: AsyncConnection) -> list[str]:
    has_version = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
    revision = await current_revision(conn) if has_version else None
    if is_newer(revision):
        return [f"schema at revision {revision}, newer than this build's {head_revision()}: nothing to do"]
    lines: list[str] = []
    if not has_version and await adopt.is_original(conn):
        lines += (await adopt.plan(conn)).lines()
        lines.append(f"then the schema is at revision {head_revision()}")
        return lines
    pending = pending_revisions(revision)
    if pending:
        lines.append(f"apply migrations {', '.join(pending)} (from {revision or 'an empty database'})")
    else:
        lines.append(f"schema at revision {revision}: no migration to apply")
    has_versions = await conn.run_sync(lambda sync: inspect(sync).has_table("cs_schema_migrations"))
    present = (
        set((await conn.execute(text("SELECT version FROM cs_schema_migrations"))).scalars())
        if has_versions
        else set()
    )
    missing = [v for v in all_versions() if v not in present]
    if missing:
        lines.append(f"record {len(missing)} versions in cs_schema_migrations: {', '.join(missing)}")
    return lines


def pending_revisions(revision: str | None) -> list[str]:
    """The revisions an upgrade from ``revision`` applies, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(scripts.iterate_revisions("head", revision or "base")))]


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
    from ai_customer_service.db import schema_versions

    return buffer.getvalue() + schema_versions.offline_sql()
