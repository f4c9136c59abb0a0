"""``cs_schema_migrations``: the original's migration bookkeeping, kept true on every database.

The original recorded each applied ``db/migration/*.up.sql`` file by name (``0001_init``, ...); the
runbook's checks read that table. We keep it on every database, ours and adopted ones: the original's
versions whose tables our schema includes, and one row per migration of ours (``ai_cs_0001_initial_schema``,
...). :func:`record_versions` writes them inside the migration transaction, under the migration lock.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import String, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, UTCDateTime

# The original's migrations whose tables and columns our schema includes (its later files, on an
# adopted database, stay recorded as the original wrote them).
ORIGINAL_VERSIONS = ("0001_init",)
OWN_PREFIX = "ai_cs_"


class SchemaMigration(Base):
    __tablename__ = "cs_schema_migrations"

    version: Mapped[str] = mapped_column(String(255), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=text("CURRENT_TIMESTAMP"))


@lru_cache(maxsize=1)
def own_versions() -> tuple[str, ...]:
    """``ai_cs_<file name>`` of every migration of this build, oldest first."""
    from ai_customer_service.db.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = list(scripts.walk_revisions())  # head first
    return tuple(OWN_PREFIX + Path(r.path).stem for r in reversed(revisions))


def all_versions() -> tuple[str, ...]:
    return (*ORIGINAL_VERSIONS, *own_versions())


async def record_versions(conn: AsyncConnection) -> int:
    """Add the versions the table lacks (never removes one); returns how many were added."""
    present = set((await conn.execute(text("SELECT version FROM cs_schema_migrations"))).scalars())
    missing = [v for v in all_versions() if v not in present]
    for version in missing:  # in order, so applied_at follows the migrations' order
        await conn.execute(
            text("INSERT INTO cs_schema_migrations (version, applied_at) VALUES (:v, CURRENT_TIMESTAMP)"),
            {"v": version},
        )
    return len(missing)


def offline_sql() -> str:
    """The inserts for ``migrate --sql`` (after the DDL that creates the table)."""
    values = ",\n  ".join(f"('{v}')" for v in all_versions())
    return (
        "\n-- the original's bookkeeping, read by the runbook's checks\n"
        f"INSERT INTO cs_schema_migrations (version) VALUES\n  {values}\nON CONFLICT (version) DO NOTHING;\n"
    )
