"""Dedup records are kept for ``AI_CS_DEDUP_RETENTION_DAYS`` and then purged in batches; a retry of
a message whose record is gone is processed again (the documented trade-off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from ai_customer_service.conversation.models import MessageDedup
from ai_customer_service.conversation.service import purge_dedup_records
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed


async def _post(client: httpx.AsyncClient, message_id: str) -> httpx.Response:
    raw, headers = signed(message("hello", open_id=f"c-{message_id}", message_id=message_id), TEST_SECRET)
    return await client.post(WEBHOOK, content=raw, headers=headers)


async def test_old_dedup_records_are_purged_and_recent_ones_kept(
    client: httpx.AsyncClient, db: Database
) -> None:
    for i in range(5):
        assert (await _post(client, f"m{i}")).json()["duplicate"] is False
    now = datetime.now(UTC)
    async with db.transaction() as tx:
        await tx.execute(
            update(MessageDedup)
            .where(MessageDedup.message_id.in_(["m0", "m1", "m2"]))
            .values(created_at=now - timedelta(days=8))
        )

    assert await purge_dedup_records(db, retention_days=7, now=now, batch=2) == 3
    async with db.sessionmaker() as tx:
        left = set((await tx.execute(select(MessageDedup.message_id))).scalars())
    assert left == {"m3", "m4"}
    assert await purge_dedup_records(db, retention_days=7, now=now) == 0

    assert (await _post(client, "m4")).json()["duplicate"] is True  # still within retention
    assert (await _post(client, "m0")).json()["duplicate"] is False  # its record is gone
