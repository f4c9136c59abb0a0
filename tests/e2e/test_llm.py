"""The optional LLM over HTTP against the fake OpenAI-compatible server (issue #17).

Each defect of the issue has a test here or in ``tests/unit/dialog/test_gate.py``: what the model says
reaches the customer only through the faithfulness gate; a failed gate falls back to the offline
answer with a reason label; the breaker stops calling a failing server; the model is never asked
for a duplicate or for a conversation a person owns.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.knowledge.evaluation import run_eval
from ai_customer_service.main import create_app
from tests.conftest import TEST_SECRET
from tests.support.fake_llm import FakeLLM
from tests.support.webhooks import WEBHOOK, message, signed

KB = "/api/v1/customer-service/kb"
ADMIN = {"Authorization": "Bearer admin-token"}
FIXTURES = Path(__file__).parent.parent / "fixtures"
QUESTION = "how do I create an api key"
OFFLINE = "Open Console → API keys → Create key."


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {**db_env, "AI_CS_ADMIN_TOKEN": "admin-token"}


@pytest.fixture
def fake_llm() -> Any:
    llm = FakeLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


@pytest.fixture
async def llm_client(
    settings: Settings, db: Database, fake_llm: FakeLLM
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(
        settings.model_copy(
            update={"llm_base_url": fake_llm.url, "llm_timeout_ms": 300, "llm_breaker_failures": 2}
        ),
        db=db,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        raw = (FIXTURES / "tiny_kb.jsonl").read_bytes()
        response = await client.post(
            f"{KB}/import", content=raw, headers={**ADMIN, "Content-Type": "application/x-ndjson"}
        )
        assert response.status_code == 200, response.text
        await app.state.ctx.knowledge.refresh()
        yield app, client


async def say(
    client: httpx.AsyncClient, text: str, open_id: str = "llm-cust", message_id: str | None = None
) -> dict[str, Any]:
    raw, headers = signed(message(text, open_id=open_id, message_id=message_id), TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_an_accepted_answer_reaches_the_customer_with_its_citation(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM
) -> None:
    _, client = llm_client
    body = await say(client, QUESTION)
    assert body["reply"] == "Open Console → API keys → Create key [1]."
    assert body["citations"] == [{"id": "api-key", "title": "Create an API key"}]
    assert await metric(client, 'cs_llm_requests_total{outcome="accepted"}') == 1.0
    # the prompt is in the customer's language only (defect 6: both versions were sent)
    prompt = fake_llm.system_prompt
    assert "[1] Create an API key\nOpen Console → API keys → Create key." in prompt
    assert not re.search(r"[\u4e00-\u9fff]", prompt)


async def test_a_chinese_question_gets_a_chinese_prompt(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM
) -> None:
    _, client = llm_client
    body = await say(client, "怎么创建API密钥")
    assert body["reply"] == "打开控制台 → API 密钥 → 创建密钥 [1]。"
    assert "Open Console" not in fake_llm.system_prompt and "请用简体中文" in fake_llm.system_prompt


@pytest.mark.parametrize(
    ("content", "finish", "reason"),
    [
        ("Open Console → API keys → Create key [8", "length", "truncated"),  # cut off at the cap
        ("I made this up [1]", "stop", "unsupported"),  # invented, with an in-range marker
        ("Open Console → API keys → Create key [7].", "stop", "bad_citation"),  # out of range
        ("打开控制台 → API 密钥 → 创建密钥 [1]。", "stop", "wrong_language"),  # zh for an en question
        ("Invoices are under Billing → Invoices [2].", "stop", "missing_chosen_entry"),
        ("Open Console, then API keys, then Create key.", "stop", "no_citation"),
    ],
)
async def test_a_failed_gate_falls_back_to_the_offline_answer_with_its_reason(
    llm_client: tuple[FastAPI, httpx.AsyncClient],
    fake_llm: FakeLLM,
    content: str,
    finish: str,
    reason: str,
) -> None:
    _, client = llm_client
    fake_llm.script(content, finish)
    body = await say(client, QUESTION)
    assert body["reply"] == OFFLINE and body["intent"] == "api-key"
    assert body["citations"] == [{"id": "api-key", "title": "Create an API key"}]
    assert len(fake_llm.requests) == 1
    assert await metric(client, f'cs_llm_gate_rejections_total{{reason="{reason}"}}') == 1.0
    assert await metric(client, 'cs_llm_requests_total{outcome="rejected"}') == 1.0
    assert await metric(client, 'cs_llm_failures_total{code="CS_LLM_5001"}') == 1.0


async def test_mis_numbered_citations_are_renumbered_to_match_the_list(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM
) -> None:
    _, client = llm_client
    fake_llm.mode = "swapped"  # "<entry 2's sentence> [2]. <entry 1's sentence> [1]."
    body = await say(client, QUESTION)
    ids = [c["id"] for c in body["citations"]]
    assert len(ids) == 2 and ids[1] == "api-key", body
    # [n] is item n of the list: the api-key sentence now carries [2], the other one [1]
    assert body["reply"].endswith("Open Console → API keys → Create key [2].")
    assert body["reply"].index("[1]") < body["reply"].index("[2]")


@pytest.mark.parametrize(
    ("mode", "outcome", "code"), [("slow", "timeout", "CS_LLM_5002"), ("fail", "error", "CS_LLM_5001")]
)
async def test_the_breaker_stops_calling_a_failing_server(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM, mode: str, outcome: str, code: str
) -> None:
    _, client = llm_client
    fake_llm.mode, fake_llm.delay = mode, 1.0
    health = (await client.get("/actuator/health")).json()
    assert health["components"]["llm"]["status"] == "UP"
    for i in range(5):
        body = await say(client, QUESTION, open_id=f"breaker-{i}")
        assert body["reply"] == OFFLINE
    assert len(fake_llm.requests) == 2  # AI_CS_LLM_BREAKER_FAILURES=2, then no more calls
    assert await metric(client, f'cs_llm_requests_total{{outcome="{outcome}"}}') == 2.0
    assert await metric(client, 'cs_llm_requests_total{outcome="breaker_open"}') == 3.0
    assert await metric(client, f'cs_llm_failures_total{{code="{code}"}}') == 2.0
    assert await metric(client, "cs_llm_breaker_state") == 2.0
    health = (await client.get("/actuator/health")).json()
    assert health["components"]["llm"]["status"] == "DOWN"
    assert health["components"]["llm"]["breaker"] == "open"
    assert health["status"] == "UP"  # the bot answers without the model: readiness does not change
    assert (await client.get("/actuator/health/ready")).status_code == 200


# the webhook pre-reads the dedup record and the session's owner before ``analyze``
# (IngestService.ingest): a duplicate or a conversation a person owns never reaches the model


async def test_a_duplicate_makes_no_model_call(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM
) -> None:
    _, client = llm_client
    first = await say(client, QUESTION, message_id="dup-1")
    assert len(fake_llm.requests) == 1 and not first.get("duplicate")
    again = await say(client, QUESTION, message_id="dup-1")
    assert again["duplicate"] is True
    assert len(fake_llm.requests) == 1


async def test_a_message_in_a_handed_off_conversation_makes_no_model_call(
    llm_client: tuple[FastAPI, httpx.AsyncClient], fake_llm: FakeLLM
) -> None:
    _, client = llm_client
    handoff = await say(client, "转人工", open_id="owned-by-a-person")
    assert handoff["handoff"] is True and not fake_llm.requests  # a rule: never a model call
    body = await say(client, QUESTION, open_id="owned-by-a-person")
    assert body["reply"] == ""  # a person owns the conversation
    assert not fake_llm.requests


@pytest.mark.parametrize("mode", ["ok", "invented"])
async def test_eval_llm_scores_what_the_customer_receives(
    settings: Settings, fake_llm: FakeLLM, mode: str
) -> None:
    if mode == "invented":
        fake_llm.script("I made this up [1]")
    result = await run_eval(
        settings.model_copy(update={"llm_base_url": fake_llm.url, "llm_timeout_ms": 2000}),
        FIXTURES / "tiny_kb.jsonl",
        FIXTURES / "tiny_cases.jsonl",
        use_llm=True,
    )
    assert result["llm"] is True and result["llm_calls"] == len(fake_llm.requests) > 0
    if mode == "ok":
        assert result["llm_answers"] == result["llm_calls"] == result["llm_answers_correct"]
        assert result["llm_rejected"] == {} and result["llm_support_min"] == 1.0
    else:
        assert result["llm_answers"] == 0
        # English "I made this up" is unsupported, and in the wrong language for the Chinese case
        assert result["llm_rejected"] == {"unsupported": result["llm_calls"] - 1, "wrong_language": 1}
        assert result["llm_support_mean"] is None
