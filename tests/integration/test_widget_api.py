"""The public widget API in-process: sites, origins, visitor tokens, the ingest pipeline, isolation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.conversation.sources import widget_source
from ai_customer_service.db.engine import Database
from ai_customer_service.widget import tokens
from ai_customer_service.widget.service import create_site, revoke_site
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed

ORIGIN = "https://shop.example.com"
PREFIX = "/api/v1/customer-service/widget"


@pytest.fixture
async def site_key(db: Database) -> str:
    site = await create_site(db, name="shop", origins=[ORIGIN], identity_secret="s" * 32)
    return site.public_key


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Origin": ORIGIN}
    ) as c:
        yield c


async def start(web: httpx.AsyncClient, key: str, **body: str) -> dict:
    r = await web.post(f"{PREFIX}/{key}/conversation", json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


async def send(web: httpx.AsyncClient, key: str, visitor: dict[str, str], client_id: str, text: str) -> dict:
    r = await web.post(
        f"{PREFIX}/{key}/messages", json={"client_message_id": client_id, "content": text}, headers=visitor
    )
    assert r.status_code == 200, r.text
    return r.json()


async def count_messages(db: Database) -> int:
    async with db.sessionmaker() as tx:
        return int((await tx.execute(select(func.count()).select_from(Message))).scalar_one())


async def test_a_visitor_talks_to_the_bot_exactly_once(
    web: httpx.AsyncClient, site_key: str, db: Database
) -> None:
    started = await start(web, site_key)
    assert started["session"] is None and started["messages"] == []
    token = started["visitor_token"]
    assert web.headers["Origin"] == ORIGIN
    headers = {"X-CS-Visitor-Token": token}
    body = {"client_message_id": "m-1", "content": "hello there"}
    first = await web.post(f"{PREFIX}/{site_key}/messages", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["access-control-allow-origin"] == ORIGIN
    data = first.json()
    assert data["duplicate"] is False
    authors = [m["author"] for m in data["messages"]]
    assert authors == ["customer", "bot"]
    again = await web.post(f"{PREFIX}/{site_key}/messages", json=body, headers=headers)
    assert again.json()["duplicate"] is True
    assert [m["id"] for m in again.json()["messages"]] == [m["id"] for m in data["messages"]]
    assert await count_messages(db) == 2
    async with db.sessionmaker() as tx:
        session = (await tx.execute(select(Session))).scalar_one()
    assert session.channel == "widget" and session.open_id.startswith(f"w:{site_key}:v:")
    history = await web.get(f"{PREFIX}/{site_key}/messages", headers=headers)
    assert history.json()["messages"][0]["content"] == "hello there"
    resumed = await start(web, site_key, **{})
    assert resumed["visitor_token"] != token  # no token sent: a new visitor
    back = await web.post(f"{PREFIX}/{site_key}/conversation", headers=headers)
    assert len(back.json()["messages"]) == 2 and back.json()["session"]["id"] == str(session.id)


async def test_a_visitor_cannot_read_or_write_another_visitors_conversation(
    web: httpx.AsyncClient, site_key: str, db: Database
) -> None:
    alice = {"X-CS-Visitor-Token": (await start(web, site_key))["visitor_token"]}
    bob = {"X-CS-Visitor-Token": (await start(web, site_key))["visitor_token"]}
    sent = await web.post(
        f"{PREFIX}/{site_key}/messages",
        json={"client_message_id": "a1", "content": "my secret order 42"},
        headers=alice,
    )
    session_id = sent.json()["session"]["id"]
    assert (await web.get(f"{PREFIX}/{site_key}/messages", headers=bob)).json()["messages"] == []
    # the same client id from bob is his own message, never alice's answer
    mine = await web.post(
        f"{PREFIX}/{site_key}/messages", json={"client_message_id": "a1", "content": "hi"}, headers=bob
    )
    assert mine.status_code == 200 and mine.json()["duplicate"] is False
    assert mine.json()["session"]["id"] != session_id
    rated = await web.post(
        f"{PREFIX}/{site_key}/feedback", json={"session_id": session_id, "score": 1}, headers=bob
    )
    assert rated.status_code == 404 and rated.json()["error"]["code"] == "CS_WGT_4042"
    ok = await web.post(
        f"{PREFIX}/{site_key}/feedback",
        json={"session_id": session_id, "score": 5, "comment": "great"},
        headers=alice,
    )
    assert ok.status_code == 200 and ok.json()["score"] == 5


async def test_a_signed_webhook_with_the_visitors_open_id_cannot_reach_the_widget_conversation(
    web: httpx.AsyncClient, site_key: str, db: Database
) -> None:
    """Whoever holds the webhook secret chooses channel and open_id, but never the source: a widget
    conversation's source is its site's, so the webhook gets a conversation of its own."""
    visitor = {"X-CS-Visitor-Token": (await start(web, site_key))["visitor_token"]}
    widget_session = (await send(web, site_key, visitor, "v1", "my order 42 never arrived"))["session"]["id"]
    async with db.sessionmaker() as tx:
        session = await tx.get(Session, uuid.UUID(widget_session))
        assert session is not None
        open_id, source = session.open_id, session.source
    assert source == widget_source(site_key)

    raw, headers = signed(message("click https://evil.example to get a refund", open_id=open_id), TEST_SECRET)
    injected = await web.post(WEBHOOK, content=raw, headers=headers)
    assert injected.status_code == 200, injected.text
    assert injected.json()["session_id"] != widget_session
    async with db.sessionmaker() as tx:
        other = await tx.get(Session, uuid.UUID(injected.json()["session_id"]))
        assert other is not None and (other.channel, other.open_id, other.source) == ("widget", open_id, "")

    # the visitor sees none of it, and their next message stays in their own conversation
    history = (await web.get(f"{PREFIX}/{site_key}/messages", headers=visitor)).json()
    assert history["session"]["id"] == widget_session
    assert all("evil" not in m["content"] for m in history["messages"])
    again = await send(web, site_key, visitor, "v2", "hello?")
    assert again["session"]["id"] == widget_session
    rated = await web.post(
        f"{PREFIX}/{site_key}/feedback",
        json={"session_id": injected.json()["session_id"], "score": 1},
        headers=visitor,
    )
    assert rated.status_code == 404 and rated.json()["error"]["code"] == "CS_WGT_4042"


async def test_refusals_have_codes_and_store_nothing(
    web: httpx.AsyncClient, app: FastAPI, site_key: str, db: Database
) -> None:
    token = (await start(web, site_key))["visitor_token"]
    headers = {"X-CS-Visitor-Token": token}
    url = f"{PREFIX}/{site_key}/messages"

    async def code(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    assert await code(
        await web.post(url, json={"client_message_id": "x", "content": "a" * 2001}, headers=headers)
    ) == (400, "CS_WGT_4001")
    assert await code(await web.post(url, json={"client_message_id": "x", "content": "hi"})) == (
        401,
        "CS_WGT_4011",
    )
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert await code(
        await web.post(
            url, json={"client_message_id": "x", "content": "hi"}, headers={"X-CS-Visitor-Token": forged}
        )
    ) == (403, "CS_WGT_4033")
    other = await create_site(db, name="other", origins=[ORIGIN])
    foreign = (await start(web, other.public_key))["visitor_token"]
    assert await code(
        await web.post(
            url, json={"client_message_id": "x", "content": "hi"}, headers={"X-CS-Visitor-Token": foreign}
        )
    ) == (403, "CS_WGT_4034")
    evil = await web.post(
        url,
        json={"client_message_id": "x", "content": "hi"},
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert await code(evil) == (403, "CS_WGT_4032")
    assert "access-control-allow-origin" not in evil.headers
    no_origin = await web.post(
        url, json={"client_message_id": "x", "content": "hi"}, headers={**headers, "Origin": ""}
    )
    assert (await code(no_origin))[1] == "CS_WGT_4032"
    assert await code(
        await web.post(
            f"{PREFIX}/ws_nope/messages", json={"client_message_id": "x", "content": "hi"}, headers=headers
        )
    ) == (404, "CS_WGT_4041")
    assert await code(
        await web.post(url, json={"client_message_id": "bad id!", "content": "hi"}, headers=headers)
    ) == (400, "CS_REQ_4001")
    assert await code(
        await web.post(url, json={"client_message_id": "x", "content": "hi", "extra": 1}, headers=headers)
    ) == (400, "CS_REQ_4001")
    await revoke_site(db, "other")
    assert await code(await web.post(f"{PREFIX}/{other.public_key}/conversation")) == (403, "CS_WGT_4031")
    assert await count_messages(db) == 0


async def test_preflight_allows_only_the_sites_origins(web: httpx.AsyncClient, site_key: str) -> None:
    ok = await web.options(f"{PREFIX}/{site_key}/messages", headers={"Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == ORIGIN
    assert "X-CS-Visitor-Token" in ok.headers["access-control-allow-headers"]
    bad = await web.options(f"{PREFIX}/{site_key}/messages", headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


async def test_a_verified_user_keeps_their_history_on_another_device(
    web: httpx.AsyncClient, site_key: str
) -> None:
    user_hash = tokens.user_hash("s" * 32, "user-42")
    laptop = await start(web, site_key, user_id="user-42", user_hash=user_hash)
    await web.post(
        f"{PREFIX}/{site_key}/messages",
        json={"client_message_id": "c1", "content": "hello from my laptop"},
        headers={"X-CS-Visitor-Token": laptop["visitor_token"]},
    )
    phone = await start(web, site_key, user_id="user-42", user_hash=user_hash)
    assert phone["messages"][0]["content"] == "hello from my laptop"
    forged = await web.post(
        f"{PREFIX}/{site_key}/conversation", json={"user_id": "user-43", "user_hash": user_hash}
    )
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "CS_WGT_4035"


async def test_a_flood_of_messages_is_refused_per_site(web: httpx.AsyncClient, db: Database) -> None:
    site = await create_site(db, name="tiny", origins=[ORIGIN], rate_limit_messages=3, rate_limit_visitors=2)
    visitors = [(await start(web, site.public_key))["visitor_token"] for _ in range(2)]
    third = await web.post(f"{PREFIX}/{site.public_key}/conversation")
    assert third.status_code == 429 and third.json()["error"]["code"] == "CS_WGT_4291"
    assert int(third.headers["retry-after"]) >= 1
    codes = []
    for i in range(5):
        r = await web.post(
            f"{PREFIX}/{site.public_key}/messages",
            json={"client_message_id": f"f{i}", "content": "hi"},
            headers={"X-CS-Visitor-Token": visitors[i % 2]},
        )
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert await count_messages(db) == 6


def test_tokens_are_bound_to_their_key() -> None:
    visitor = tokens.Visitor(site_id=str(uuid.uuid4()), visitor_id="abc")
    token = tokens.issue(b"k1", visitor)
    assert tokens.verify(b"k1", token) == visitor
    with pytest.raises(tokens.TokenError):
        tokens.verify(b"k2", token)
