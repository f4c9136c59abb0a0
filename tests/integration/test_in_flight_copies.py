"""Copies of a message still in flight (an upstream's retries) wait for the original and are answered
from its record; they never process the message a second time, and an original that ends without a
record leaves its copies to be processed on their own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from ai_customer_service.conversation.models import Message
from ai_customer_service.db.engine import Database
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.webhook.schemas import InboundMessage
from ai_customer_service.webhook.service import _in_flight_key, _InFlight
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed


async def _inbound(db: Database) -> int:
    async with db.reader() as tx:
        stmt = select(func.count()).select_from(Message).where(Message.direction == "inbound")
        return int((await tx.execute(stmt)).scalar_one())


async def test_concurrent_copies_are_answered_from_the_originals_record(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    raw, headers = signed(message("How do I reset my password?", open_id="c1", message_id="m-1"), TEST_SECRET)
    responses = await asyncio.gather(*(client.post(WEBHOOK, content=raw, headers=headers) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    bodies: list[dict[str, Any]] = [r.json() for r in responses]
    assert [b["duplicate"] for b in bodies] == [False, True, True, True, True]
    same = {(b["session_id"], b["message_id"], b["reply"], b["ticket_id"]) for b in bodies}
    assert len(same) == 1  # every copy got the original's answer
    assert await _inbound(db) == 1
    metrics = app.state.ctx.metrics
    assert metrics.webhook_coalesced._value.get() == 4  # none of them went to the database
    # a later copy (nothing in flight) is answered by the database path, as before
    later = await client.post(WEBHOOK, content=raw, headers=headers)
    assert later.json()["duplicate"] is True and later.json()["message_id"] == bodies[0]["message_id"]
    assert metrics.webhook_coalesced._value.get() == 4


async def test_a_copy_from_another_customer_still_gets_409(client: httpx.AsyncClient, db: Database) -> None:
    """The copy's answer goes through the same checks as the database path's duplicate answer."""
    mine = signed(message("hello", open_id="owner", message_id="shared-id"), TEST_SECRET)
    theirs = signed(message("hello", open_id="someone-else", message_id="shared-id"), TEST_SECRET)
    first, second = await asyncio.gather(
        client.post(WEBHOOK, content=mine[0], headers=mine[1]),
        client.post(WEBHOOK, content=theirs[0], headers=theirs[1]),
    )
    # whichever is processed first owns the id; the other is refused, as a later copy would be
    refused = first if first.status_code == 409 else second
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert refused.json()["error"]["code"] == "CS_REQ_4091"
    assert await _inbound(db) == 1


def _message(message_id: str | None) -> InboundMessage:
    return InboundMessage(
        channel="widget",
        open_id="c",
        content="hi",
        content_type="text",
        message_id=message_id,
        user_id=None,
        sent_at=None,
        reply_to=None,
        truncated=False,
        original_length=2,
    )


def test_the_key_is_the_dedup_key_and_the_signed_request() -> None:
    plain = _in_flight_key(_message("m"), "", None)
    assert plain == ("", "widget", "m", None, None)
    signed_a = SignatureBinding(digest="a", target="POST /webhook")
    assert _in_flight_key(_message("m"), "", signed_a) != plain
    other_path = SignatureBinding(digest="a", target="POST /webhook/widget")
    assert _in_flight_key(_message("m"), "", signed_a) != _in_flight_key(_message("m"), "", other_path)
    assert _in_flight_key(_message("m"), "newapi", None) != plain  # another source's conversation


async def test_copies_of_an_original_that_fails_proceed_on_their_own() -> None:
    in_flight = _InFlight()
    key = ("", "widget", "m", None, None)
    waiters: list[asyncio.Task[dict[str, Any] | None]] = []
    with pytest.raises(RuntimeError), in_flight.lead(key):
        waiters = [asyncio.create_task(in_flight.wait(key)) for _ in range(3)]
        await asyncio.sleep(0)
        raise RuntimeError("the original failed")
    assert await asyncio.gather(*waiters) == [None, None, None]
    assert await in_flight.wait(key) is None  # nothing left registered
    with in_flight.lead(key) as lead:
        waiter = asyncio.create_task(in_flight.wait(key))
        await asyncio.sleep(0)
        lead.done({"reply": "ok"})
    assert await waiter == {"reply": "ok"}


async def test_a_cancelled_copy_does_not_cancel_the_original() -> None:
    in_flight = _InFlight()
    key = ("", "widget", "m", None, None)
    with in_flight.lead(key) as lead:
        waiter = asyncio.create_task(in_flight.wait(key))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        lead.done({"reply": "ok"})
        assert lead.future.result() == {"reply": "ok"}
