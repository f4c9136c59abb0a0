"""The migration tree equals the models, is idempotent, and its offline SQL applies with psql."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import current_revision, head_revision, offline_sql, upgrade
from ai_customer_service.db.models import metadata
from tests.support import databases


async def test_upgrade_from_empty_equals_the_models(db: Database) -> None:
    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        assert await current_revision(conn) == head_revision()


async def test_running_migrations_twice_is_a_no_op(db: Database) -> None:
    async with db.engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one()
    await upgrade(db.engine)
    await upgrade(db.engine)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one() == before == 1
        assert await current_revision(conn) == head_revision()


@pytest.mark.usefixtures("postgres_only")
async def test_offline_sql_applies_cleanly_with_psql() -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql not installed")
    name = await databases.create_database("aics_sql")
    try:
        result = subprocess.run(
            [psql, "-v", "ON_ERROR_STOP=1", "-q", "-d", databases.dsn_for(name).split("?")[0], "-f", "-"],
            input=offline_sql(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        out = subprocess.run(
            [
                psql,
                "-At",
                "-d",
                databases.dsn_for(name).split("?")[0],
                "-c",
                "SELECT version_num FROM alembic_version",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.stdout.strip() == head_revision()
    finally:
        await databases.drop_database(name)
