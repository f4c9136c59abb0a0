"""Replays of signed requests without a message_id (generic and platform webhooks), and message ids
reused by another customer — including dedup records written before owners were stored."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, update

from ai_customer_service.conversation.models import Message, MessageDedup
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed

PLATFORM_SECRET = "ingress-1"


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {
        **db_env,
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": PLATFORM_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": "http://127.0.0.1:9/cb",
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": "cb-1",
        "AI_CS_OUTBOX_WORKER_ENABLED": "false",
    }


async def inbound_count(db: Database) -> int:
    async with db.sessionmaker() as tx:
        stmt = select(func.count()).select_from(Message).where(Message.direction == "inbound")
        return int((await tx.execute(stmt)).scalar_one())


async def post(client: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    raw, headers = signed(body, TEST_SECRET)
    return await client.post(WEBHOOK, content=raw, headers=headers)


async def test_a_replayed_platform_request_without_message_id_is_a_duplicate(
    client: httpx.AsyncClient, db: Database
) -> None:
    raw, headers = signed(message("hello", open_id="p-1"), PLATFORM_SECRET)
    path = "/api/v1/customer-service/platforms/sub2api/webhook/widget"
    first = await client.post(path, content=raw, headers=headers)
    replay = await client.post(path, content=raw, headers=headers)
    assert first.json()["duplicate"] is False and replay.json()["duplicate"] is True
    assert await inbound_count(db) == 1


async def test_a_legacy_dedup_record_is_not_handed_to_another_customer(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await post(client, message("how do I reset my password", open_id="alice", message_id="m-1"))
    assert first.status_code == 200
    async with db.transaction() as tx:  # as written by the previous build: no owner in the record
        record = (await tx.execute(select(MessageDedup))).scalar_one()
        response = {k: v for k, v in record.response.items() if k != "_open_id"}
        await tx.execute(update(MessageDedup).values(response=response))
    other = await post(client, message("something else", open_id="mallory", message_id="m-1"))
    assert other.status_code == 409 and other.json()["error"]["code"] == "CS_REQ_4091"
    retry = await post(client, message("how do I reset my password", open_id="alice", message_id="m-1"))
    assert retry.json() == {**first.json(), "duplicate": True}


async def test_concurrent_posts_of_one_message_id_by_several_customers(
    client: httpx.AsyncClient, db: Database
) -> None:
    results = await asyncio.gather(
        *(post(client, message("hello there", open_id=f"c-{i}", message_id="shared-1")) for i in range(6))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 5, [r.text for r in results]
    assert await inbound_count(db) == 1
