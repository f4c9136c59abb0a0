"""The migration tree equals the models, is idempotent, and its offline SQL applies with psql."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import (
    current_revision,
    head_revision,
    offline_sql,
    upgrade,
)
from ai_customer_service.db.models import metadata
from tests.support import databases
from tests.support.migrations import insert_row, stable_id, to_revision


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


async def test_0007_keeps_each_sessions_latest_rating(db: Database) -> None:
    """Upgrading a database with several ratings per session keeps the newest one of each."""

    async with db.engine.begin() as conn:
        await conn.run_sync(to_revision("0006", down=True))
        for name in ("a", "b"):
            await conn.execute(
                text(
                    "INSERT INTO cs_sessions (id, channel, open_id, status, low_confidence_streak, "
                    "created_at, updated_at, last_message_at) "
                    "VALUES (:id, 'widget', :name, 'idle', 0, :t, :t, :t)"
                ),
                {"id": stable_id(conn, name), "name": name, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        rows = [("a", 1, 1), ("a", 5, 3), ("a", 2, 2), ("b", 4, 1)]  # session, score, minute
        for i, (name, score, minute) in enumerate(rows):
            await conn.execute(
                text(
                    "INSERT INTO cs_feedback (id, session_id, score, created_at) "
                    "VALUES (:id, :sid, :score, :t)"
                ),
                {
                    "id": stable_id(conn, f"f{i}"),
                    "sid": stable_id(conn, name),
                    "score": score,
                    "t": datetime(2026, 1, 1, 0, minute, tzinfo=UTC),
                },
            )
        await conn.run_sync(to_revision("head"))
        kept = (await conn.execute(text("SELECT score FROM cs_feedback ORDER BY score"))).scalars().all()
    assert kept == [4, 5]


async def test_0013_turns_text_audit_states_into_json_that_reads_back_the_same(db: Database) -> None:
    from ai_customer_service.audit.models import AuditLog

    async with db.engine.begin() as conn:
        await conn.run_sync(to_revision("0009", down=True))
        await conn.execute(
            text(
                "INSERT INTO cs_audit_logs (id, object_type, object_id, action, actor_type, before_state,"
                " after_state, created_at)"
                " VALUES (:id, 'ticket', 't1', 'assign', 'admin', 'open', 'assigned', :t)"
            ),
            {"id": stable_id(conn, "audit-1"), "t": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        await conn.run_sync(to_revision("head"))
    async with db.sessionmaker() as tx:
        row = (await tx.execute(text("SELECT 1"))).scalar_one() and await tx.get(
            AuditLog, uuid.uuid5(uuid.NAMESPACE_DNS, "audit-1")
        )
    assert row is not None
    assert (row.before_state, row.after_state, row.tenant_id, row.source_ip) == (
        "open",
        "assigned",
        "default",
        None,
    )


async def test_0010_gives_existing_sessions_their_source_and_keys_open_sessions_by_it(db: Database) -> None:
    """Sessions keep their platform as their source; a second open session of the same customer is
    then allowed through another source only."""

    insert = text(
        "INSERT INTO cs_sessions (id, channel, open_id, platform, status, low_confidence_streak, "
        "created_at, updated_at, last_message_at) VALUES (:id, 'widget', :open_id, :platform, 'idle', 0, "
        ":t, :t, :t)"
    )
    t = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.engine.begin() as conn:
        await conn.run_sync(to_revision("0008", down=True))
        await conn.execute(
            insert, {"id": stable_id(conn, "s1"), "open_id": "x", "platform": "sub2api", "t": t}
        )
        await conn.execute(insert, {"id": stable_id(conn, "s2"), "open_id": "y", "platform": None, "t": t})
        await conn.run_sync(to_revision("head"))
        rows = (await conn.execute(text("SELECT open_id, source FROM cs_sessions ORDER BY open_id"))).all()
        assert [tuple(r) for r in rows] == [("x", "sub2api"), ("y", "")]
        # the generic webhook's own conversation with customer x may now exist next to sub2api's
        await conn.execute(insert, {"id": stable_id(conn, "s3"), "open_id": "x", "platform": None, "t": t})
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(
                insert, {"id": stable_id(conn, "s4"), "open_id": "y", "platform": None, "t": t}
            )


async def test_0016_moves_existing_widget_conversations_to_their_sites_source(db: Database) -> None:
    """A widget conversation of an existing site (and its messages' dedup records) gets the site's
    source; a generic-webhook conversation on channel widget, or one of an unknown site, keeps ""."""

    t = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.engine.begin() as conn:
        await conn.run_sync(to_revision("0010", down=True))
        site = {"name": "shop", "public_key": "ws_a_b", "origins": "[]", "active": True, "created_at": t}
        limits = {"rate_limit_messages": 0, "rate_limit_visitors": 0}
        await insert_row(conn, "cs_widget_sites", id=stable_id(conn, "site"), **site, **limits)
        for name, open_id in (("s1", "w:ws_a_b:v:1"), ("s2", "gateway-customer"), ("s3", "w:wsXaXb:v:2")):
            times = {"created_at": t, "updated_at": t, "last_message_at": t}
            session = {"channel": "widget", "open_id": open_id, "source": "", "status": "idle"}
            await insert_row(
                conn, "cs_sessions", id=stable_id(conn, name), low_confidence_streak=0, **session, **times
            )
            dedup = {"source": "", "channel": "widget", "message_id": f"m-{name}", "created_at": t}
            await insert_row(
                conn,
                "cs_message_dedup",
                id=stable_id(conn, f"d-{name}"),
                session_id=stable_id(conn, name),
                **dedup,
            )
        await conn.run_sync(to_revision("head"))
        sessions = (
            await conn.execute(text("SELECT open_id, source FROM cs_sessions ORDER BY open_id"))
        ).all()
        dedup = (await conn.execute(text("SELECT message_id, source FROM cs_message_dedup ORDER BY 1"))).all()
    assert [tuple(r) for r in sessions] == [
        ("gateway-customer", ""),
        ("w:wsXaXb:v:2", ""),  # "_" in a key is not a wildcard
        ("w:ws_a_b:v:1", "widget:ws_a_b"),
    ]
    assert [tuple(r) for r in dedup] == [("m-s1", "widget:ws_a_b"), ("m-s2", ""), ("m-s3", "")]
