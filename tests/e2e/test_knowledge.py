"""The knowledge base and the AI dialog over HTTP (in-process app, real database): contract §9."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_SECRET
from tests.support.knowledge import POINT_FIELDS
from tests.support.webhooks import WEBHOOK, message, signed

KB = "/api/v1/customer-service/kb"
ADMIN = {"Authorization": "Bearer admin-token"}
FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {**db_env, "AI_CS_ADMIN_TOKEN": "admin-token"}


async def load_tiny_kb(client: httpx.AsyncClient, app: FastAPI) -> None:
    raw = (FIXTURES / "tiny_kb.jsonl").read_bytes()
    response = await client.post(
        f"{KB}/import", content=raw, headers={**ADMIN, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    await app.state.ctx.knowledge.refresh()


async def say(client: httpx.AsyncClient, text: str, open_id: str = "kb-cust") -> dict[str, Any]:
    raw, headers = signed(message(text, open_id=open_id), TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_entry_crud_with_codes_and_optimistic_locking(client: httpx.AsyncClient) -> None:
    created = await client.post(
        KB,
        json={"title": "Refund policy", "answer": "Within 7 days.", "questions": ["can I get my money back"]},
        headers=ADMIN,
    )
    assert created.status_code == 201
    entry = created.json()
    assert (entry["status"], entry["version"], entry["key"]) == ("draft", 1, "refund-policy")
    dup = await client.post(KB, json={"title": "Refund policy", "answer": "x"}, headers=ADMIN)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "CS_KB_4002"

    url = f"{KB}/{entry['id']}"
    update = {
        "title": "Refund policy",
        "answer": "Within 14 days.",
        "questions": ["refund window"],
        "version": 1,
    }
    assert (await client.put(url, json=update, headers=ADMIN)).json()["version"] == 2
    stale = await client.put(url, json=update, headers=ADMIN)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "CS_KB_4091"
    published = await client.post(f"{url}/publish", headers=ADMIN)
    assert published.json()["status"] == "published"
    assert (await client.get(KB, params={"status": "published"}, headers=ADMIN)).json()["total"] == 1

    assert (await client.delete(url, headers=ADMIN)).status_code == 204
    missing = await client.get(url, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CS_KB_4001"
    bad = await client.post(KB, json={"title": " ", "answer": "x"}, headers=ADMIN)
    assert bad.status_code == 400


async def test_agents_read_but_cannot_edit(client: httpx.AsyncClient) -> None:
    agent = await client.post(
        "/api/v1/customer-service/principals", json={"name": "a1", "role": "agent"}, headers=ADMIN
    )
    headers = {"Authorization": f"Bearer {agent.json()['token']}"}
    assert (await client.get(KB, headers=headers)).status_code == 200
    denied = await client.post(KB, json={"title": "t", "answer": "a"}, headers=headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "CS_AUTH_4001"
    assert (await client.get(KB)).status_code == 401


async def test_import_rejects_bad_files_with_a_clear_code(client: httpx.AsyncClient) -> None:
    bad = await client.post(f"{KB}/import", content=b'{"title": "x"}\nnot json', headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "CS_KB_4004"
    assert "line" in bad.json()["error"]["message"] or "<upload>" in bad.json()["error"]["message"]


async def test_the_bot_answers_from_the_kb_in_the_customer_language(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await load_tiny_kb(client, app)
    en = await say(client, "how do I reset my password", open_id="en")
    assert en["intent"] == "reset-password" and en["handoff"] is False
    assert en["reply"].startswith("Click") and en["citations"] == [
        {"id": "reset-password", "title": "Reset your password"}
    ]
    zh = await say(client, "忘记密码怎么办", open_id="zh")
    assert zh["intent"] == "reset-password" and zh["reply"].startswith("在登录页")
    assert zh["citations"] == [{"id": "reset-password", "title": "重置密码"}]  # a bilingual title

    search = (await client.post(f"{KB}/search", json={"query": "download my invoice"}, headers=ADMIN)).json()
    assert search["candidates"][0]["id"] == "invoice"
    assert search["decision"]["kind"] in ("answer", "clarify")
    assert 0.0 <= search["candidates"][0]["confidence"] <= 1.0


async def test_low_confidence_clarifies_then_hands_off_with_p2(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await load_tiny_kb(client, app)
    first = await say(client, "zzz qqq xxyyzz", open_id="lost")
    assert first["handoff"] is False and first["intent"] == "clarify"
    second = await say(client, "wwww vvvv uuuu", open_id="lost")
    assert second["handoff"] is True and second["ticket_id"]
    ticket = (
        await client.get(f"/api/v1/customer-service/tickets/{second['ticket_id']}", headers=ADMIN)
    ).json()
    assert ticket["priority"] == "P2" and ticket["reason"] == "low_confidence_streak"


async def test_an_empty_kb_is_the_low_confidence_case(client: httpx.AsyncClient) -> None:
    first = await say(client, "how do I reset my password", open_id="empty")
    assert first["handoff"] is False and "human" in first["reply"]
    assert (await say(client, "hello?", open_id="empty"))["handoff"] is True


async def test_sensitive_messages_hand_off_with_p1_whatever_the_kb_says(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post(
        KB,
        json={
            "title": "Refunds",
            "answer": "We refund within 7 days.",
            "questions": ["I want a refund"],
            "status": "published",
        },
        headers=ADMIN,
    )
    await app.state.ctx.knowledge.refresh()
    body = await say(client, "I want a refund", open_id="refund")
    assert body["handoff"] is True and body["intent"] == "refund"
    ticket = (await client.get(f"/api/v1/customer-service/tickets/{body['ticket_id']}", headers=ADMIN)).json()
    assert ticket["priority"] == "P1"
    # the KB answers it confidently: the customer reads the entry while a person takes over
    assert body["reply"].startswith("We refund within 7 days.") and "human agent" in body["reply"]
    assert [c["title"] for c in body["citations"]] == ["Refunds"]

    # a sensitive message the KB does not answer is a bare handoff
    hacked = await say(client, "someone hacked my account and changed the email", open_id="hacked")
    assert hacked["handoff"] is True and hacked["intent"] == "account_security"
    assert hacked["citations"] == [] and "We refund" not in hacked["reply"]


async def test_decision_is_recorded_with_the_reply(app: FastAPI, client: httpx.AsyncClient) -> None:
    await load_tiny_kb(client, app)
    body = await say(client, "where can I download my invoice", open_id="rec")
    items = (
        await client.get(f"/api/v1/customer-service/sessions/{body['session_id']}/messages", headers=ADMIN)
    ).json()["items"]
    bot = items[1]
    assert bot["author_type"] == "bot" and bot["intent"] == "invoice"
    assert bot["decision"]["reason"] == "kb_match" and bot["latency_ms"] is not None
    assert bot["citations"] == [{"id": "invoice", "title": "Download invoices"}]


async def test_health_and_search_show_the_operating_point(app: FastAPI, client: httpx.AsyncClient) -> None:
    await load_tiny_kb(client, app)
    knowledge = (await client.get("/actuator/health")).json()["components"]["knowledge"]
    assert knowledge["status"] == "UP" and knowledge["entries"] == 3
    point = knowledge["operating_point"]
    assert set(point) >= POINT_FIELDS and point["source"] in ("self-calibrated", "fallback", "override")
    search = (await client.post(f"{KB}/search", json={"query": "download my invoice"}, headers=ADMIN)).json()
    assert {k: search["operating_point"][k] for k in POINT_FIELDS} == {k: point[k] for k in POINT_FIELDS}
    assert search["answer_threshold"] == point["threshold"]
    # the bot answers at that point: answered exactly when the best confidence reaches it
    best = search["candidates"][0]["confidence"]
    assert (search["decision"]["kind"] == "answer") == (best >= point["threshold"])


async def test_the_refresher_builds_snapshots_and_hands_them_to_the_engine(settings: Any, db: Any) -> None:
    """The engine never reads the database: the refresher rebuilds only when the KB changed."""
    from ai_customer_service.knowledge import importing
    from ai_customer_service.knowledge import service as knowledge
    from ai_customer_service.knowledge.refresher import build_engine
    from ai_customer_service.metrics import Metrics

    engine, refresher = build_engine(settings, db, Metrics())
    assert engine.knowledge_status().status == "LOADING"
    assert await refresher.refresh() is True and await refresher.refresh() is False
    assert engine.knowledge_status().entries == 0
    await knowledge.import_entries(db, importing.load_file(FIXTURES / "tiny_kb.jsonl"), actor_id="test")
    assert await refresher.refresh() is True
    assert engine.snapshot is refresher.snapshot and engine.knowledge_status().entries == 3
    assert engine.snapshot is not None and engine.snapshot.titles["reset-password"].endswith("重置密码")
