"""Adopting a database the original Go service created (PostgreSQL only, like the original)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from ai_customer_service.config import Settings, load_settings
from ai_customer_service.db import adopt
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import current_revision, dry_run, head_revision, upgrade
from ai_customer_service.db.schema_versions import own_versions
from tests.support import databases, original_db


@pytest.fixture
async def original(postgres_only: None) -> AsyncIterator[tuple[str, original_db.Seeded]]:
    name = await databases.create_database("aics_orig")
    dsn = databases.dsn_for(name).split("?")[0]
    try:
        await original_db.create_original_schema(dsn)
        seeded = await original_db.seed(dsn)
        yield dsn, seeded
    finally:
        await databases.drop_database(name)


def _settings(dsn: str) -> Settings:
    return load_settings(
        {"AI_CS_RUNTIME_ENV": "test", "AI_CS_POSTGRES_ENABLED": "true", "AI_CS_POSTGRES_DSN": dsn},
        env_file=None,
    )


@pytest.mark.usefixtures("postgres_only")
async def test_adoption_keeps_every_row_and_is_done_once(original: tuple[str, original_db.Seeded]) -> None:
    dsn, ids = original
    before = await original_db.snapshot(dsn)
    db = Database(_settings(dsn))
    try:
        preview = await dry_run(db.engine)
        assert await original_db.snapshot(dsn) == before  # the dry run changed nothing
        assert any("cs_sessions <- 4 sessions (1 older open duplicates closed" in line for line in preview)
        assert any("1 external principals (li.lei)" in line for line in preview)
        assert any(
            "pending: 1" in line and "retrying: 1" in line and "dead_letter: 1" in line for line in preview
        )

        await upgrade(db.engine)
        await upgrade(db.engine)  # a second start finds our schema: nothing more happens
        async with db.engine.connect() as conn:
            assert await current_revision(conn) == head_revision()
            q = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
            # the original's tables are archived untouched, ours hold every row
            for table, count in before.items():
                if table.startswith("public.") and table != "public.cs_schema_migrations":
                    archived = table.replace("public.", "cs_original.")
                    assert (await q(f"SELECT count(*) FROM {archived}")).scalar_one() == count, table
            assert (await q("SELECT count(*) FROM cs_messages")).scalar_one() == 4
            versions = list(
                (await q("SELECT version FROM cs_schema_migrations ORDER BY applied_at, version")).scalars()
            )
            assert versions[:3] == ["0001_init", "0002_platform_outbox", "0003_platform_channels"]
            assert set(own_versions()) <= set(versions) and len(versions) == 3 + len(own_versions())

            # sessions: one open session per customer; 'processing' became 'idle'
            states = dict((await q("SELECT id, status FROM cs_sessions")).all())
            assert states[ids.session_id] == "handoff"
            assert states[ids.old_session_id] == "closed" and states[ids.closed_session_id] == "closed"
            assert states[ids.platform_session_id] == "idle"
            platform = (
                await q("SELECT platform FROM cs_sessions WHERE id = :i", i=ids.platform_session_id)
            ).scalar()
            assert platform == "sub2api"

            # the ticket: li.lei is an external principal, the assignee
            ticket = (
                await q(
                    "SELECT t.status, t.priority, t.reason, t.subject, p.name, p.token_prefix,"
                    " t.first_assigned_at"
                    " FROM cs_tickets t JOIN cs_principals p ON p.id = t.assignee_id WHERE t.id = :i",
                    i=ids.ticket_id,
                )
            ).one()
            assert tuple(ticket[:6]) == ("assigned", "P1", "refund", "我要退款", "li.lei", "gateway")
            assert ticket.first_assigned_at is not None

            # audit rows keep the original's shape
            processed = (
                await q(
                    "SELECT actor_id, after_state, tenant_id, source_ip FROM cs_audit_logs"
                    " WHERE action = 'process'"
                )
            ).one()
            assert processed.actor_id == ids.open_id and processed.after_state["reply"] == ids.reply
            assert (processed.tenant_id, processed.source_ip) == ("default", "10.0.0.7")

            # dedup: the processed message answers with its original reply; the other with a generic one
            dedup = {
                row.message_id: (row.source, row.response)
                for row in await q("SELECT message_id, source, response FROM cs_message_dedup")
            }
            assert dedup[ids.processed_message_id][0] == ""
            assert dedup[ids.processed_message_id][1]["reply"] == ids.reply
            assert dedup[ids.processed_message_id][1]["ticket_id"] == str(ids.ticket_id)
            assert dedup[ids.bare_message_id][1]["reply"] == adopt.DUPLICATE_REPLY
            assert dedup[ids.platform_message_id][0] == "sub2api"
            # every session's source is its platform (a conversation belongs to its source)
            assert (await q("SELECT count(*) FROM cs_sessions WHERE platform IS NOT NULL")).scalar_one() > 0
            assert (
                await q("SELECT count(*) FROM cs_sessions WHERE source <> COALESCE(platform, '')")
            ).scalar_one() == 0

            # the outbox: in the original's order, waiting events pending, the dead letter dead
            events = (await q("SELECT id, status, attempts FROM cs_platform_outbox ORDER BY seq")).all()
            waiting = [e.id for e in events if e.status == "pending"]
            assert waiting == ids.pending_event_ids
            assert {e.id: e.status for e in events}[ids.dead_event_id] == "dead"
            assert (await q("SELECT count(*) FROM cs_platform_outbox_attempts")).scalar_one() == 11
    finally:
        await db.dispose()
    # the same rows (heap order follows the migration chain, ``versions`` ties on applied_at are broken
    # by name, and revision numbers need not follow the chain, e.g. 0013 before 0010)
    assert sorted((await original_db.snapshot(dsn))["versions"]) == sorted(versions)


@pytest.mark.usefixtures("postgres_only")
async def test_an_interrupted_adoption_leaves_the_original_as_it_was(
    original: tuple[str, original_db.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, _ = original
    before = await original_db.snapshot(dsn)

    async def killed(conn: object) -> dict[str, int]:
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(adopt, "copy_rows", killed)
    db = Database(_settings(dsn))
    try:
        with pytest.raises(RuntimeError, match="killed"):
            await upgrade(db.engine)
        assert await original_db.snapshot(dsn) == before  # transactional DDL: all rolled back
        monkeypatch.undo()
        await upgrade(db.engine)  # the next start adopts it
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM cs_tickets"))).scalar_one() == 1
    finally:
        await db.dispose()


@pytest.mark.usefixtures("postgres_only")
async def test_a_foreign_database_is_refused_with_a_clear_error() -> None:
    name = await databases.create_database("aics_foreign")
    dsn = databases.dsn_for(name).split("?")[0]
    db = Database(_settings(dsn))
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE cs_sessions (id uuid primary key)"))
        with pytest.raises(adopt.AdoptionError, match="created by something else"):
            await upgrade(db.engine)
    finally:
        await db.dispose()
        await databases.drop_database(name)


async def test_our_own_databases_keep_cs_schema_migrations_true(db: Database) -> None:
    async with db.engine.connect() as conn:
        versions = set((await conn.execute(text("SELECT version FROM cs_schema_migrations"))).scalars())
    assert versions == {"0001_init", *own_versions()}


@pytest.mark.usefixtures("postgres_only")
async def test_tables_created_by_hand_without_bookkeeping_are_adopted_too() -> None:
    """The original runbook's `psql -f db/migration/0001_init.up.sql` leaves no cs_schema_migrations."""
    name = await databases.create_database("aics_byhand")
    dsn = databases.dsn_for(name).split("?")[0]
    db = Database(_settings(dsn))
    try:
        await original_db.create_original_schema(dsn)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE cs_schema_migrations"))
        assert any("created by hand" in line for line in await dry_run(db.engine))
        await upgrade(db.engine)
        async with db.engine.connect() as conn:
            versions = set((await conn.execute(text("SELECT version FROM cs_schema_migrations"))).scalars())
        assert versions == {"0001_init", *own_versions()}
    finally:
        await db.dispose()
        await databases.drop_database(name)
