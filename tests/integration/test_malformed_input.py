"""Malformed input is a 400 with a code, never a 500 (issue #12, item 6).

Each of these answered 500 ``CS_SYS_5001`` before (an upstream retries a 5xx forever) or was quietly
accepted although the docs forbid it (numbers as dates, strings as booleans and integers)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from ai_customer_service.auth.models import Role
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.integration.conftest import MakeClient
from tests.support.tickets import principal
from tests.support.webhooks import message, signed

PLATFORM_SECRET = "ingress-secret-for-malformed-tests"
WEBHOOK = "/webhook"
PLATFORM_WEBHOOK = "/platforms/sub2api/webhook"
ADMIN_TOKEN = "malformed-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

BIG_NUMBER = b"1" * 5000
DEEP = b"[" * 50_000 + b"]" * 50_000


def _with(field: bytes, value: bytes) -> bytes:
    return b'{"channel":"widget","open_id":"m-1","content":"hi","' + field + b'":' + value + b"}"


MESSAGE_BODIES = {
    "5,000-digit number": _with(b"timestamp", BIG_NUMBER),
    "5,000-digit float": _with(b"timestamp", b"0." + BIG_NUMBER),
    "50,000 levels of nesting": DEEP,
    "nesting inside a field": _with(b"content", DEEP),
    "NaN": _with(b"timestamp", b"NaN"),
    "1e999": _with(b"timestamp", b"1e999"),
    "timestamp before year 1 in UTC": _with(b"timestamp", b'"0001-01-01T00:00:00+14:00"'),
    "timestamp after year 9999 in UTC": _with(b"timestamp", b'"9999-12-31T23:59:59-23:59"'),
}


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {
        **db_env,
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": PLATFORM_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": "http://127.0.0.1:9/cb",
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": "callback-secret-for-malformed-tests",
        "AI_CS_OUTBOX_WORKER_ENABLED": "false",
    }


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client(admin_token=ADMIN_TOKEN)


def assert_400(response: httpx.Response, code: str = "CS_REQ_4001") -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


@pytest.mark.parametrize("name", list(MESSAGE_BODIES))
async def test_a_malformed_webhook_body_is_a_400(client: httpx.AsyncClient, name: str) -> None:
    raw, headers = signed(MESSAGE_BODIES[name], TEST_SECRET)
    assert_400(await client.post(WEBHOOK, content=raw, headers=headers))
    raw, headers = signed(MESSAGE_BODIES[name], PLATFORM_SECRET)
    assert_400(await client.post(PLATFORM_WEBHOOK, content=raw, headers=headers))


async def test_the_messages_say_what_is_wrong(client: httpx.AsyncClient) -> None:
    raw, headers = signed(DEEP, TEST_SECRET)
    assert "nested deeper than" in assert_400(await client.post(WEBHOOK, content=raw, headers=headers))
    raw, headers = signed(MESSAGE_BODIES["5,000-digit number"], TEST_SECRET)
    assert "number longer than" in assert_400(await client.post(WEBHOOK, content=raw, headers=headers))
    raw, headers = signed(MESSAGE_BODIES["timestamp before year 1 in UTC"], TEST_SECRET)
    assert "out of range" in assert_400(await client.post(WEBHOOK, content=raw, headers=headers))


@pytest.mark.parametrize(
    "body",
    [b'{"score":' + BIG_NUMBER + b"}", b'{"score":' + DEEP + b"}", DEEP, b'{"score":NaN}'],
    ids=["5,000-digit score", "deep score", "deep body", "NaN"],
)
async def test_malformed_feedback_is_a_400(client: httpx.AsyncClient, body: bytes) -> None:
    raw, headers = signed(message("hello", open_id="fb-1"), TEST_SECRET)
    session_id = (await client.post(WEBHOOK, content=raw, headers=headers)).json()["session_id"]
    raw, headers = signed(body, TEST_SECRET)
    assert_400(await client.post(f"/sessions/{session_id}/feedback", content=raw, headers=headers))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (DEEP, "application/json"),
        (b'{"title":"t","answer":"a","tags":' + DEEP + b"}\n", "application/x-ndjson"),
        (b'[{"title":"t","answer":"a","x":' + BIG_NUMBER + b"}]", "application/json"),
        (b"title,answer\nt," + b"a" * 140_000 + b"\n", "text/csv"),
        (b"title," + b"b" * 140_000 + b"\nt,a\n", "text/csv"),
    ],
    ids=["deep array", "deep JSONL line", "5,000-digit number", "CSV field over 131,072", "CSV header"],
)
async def test_a_malformed_kb_import_is_a_400(
    client: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    response = await client.post("/kb/import", content=body, headers={**ADMIN, "Content-Type": content_type})
    assert_400(response, "CS_KB_4004")


@pytest.mark.parametrize(
    "query",
    [
        "/tickets?created_to=0.5",
        "/tickets?created_from=1796563200",
        "/tickets/stats?created_from=1796563200",
        "/tickets/stats?created_to=-1e3",
    ],
)
async def test_numbers_are_not_dates(client: httpx.AsyncClient, query: str) -> None:
    message_text = assert_400(await client.get(query, headers=ADMIN))
    assert "RFC 3339" in message_text


async def test_dates_still_work(client: httpx.AsyncClient) -> None:
    response = await client.get("/tickets?created_from=2026-01-01T00:00:00Z", headers=ADMIN)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"available": "yes", "capacity": "7"}, "available"),
        ({"available": 1}, "available"),
        ({"capacity": "7"}, "capacity"),
        ({"capacity": 7.0}, "capacity"),
        ({"capacity": True}, "capacity"),
    ],
)
async def test_availability_takes_strict_json_types(
    client: httpx.AsyncClient, db: Database, body: dict[str, object], field: str
) -> None:
    agent = await principal(db, f"agent-{uuid.uuid4().hex[:8]}", Role.AGENT)
    path = f"/principals/{agent.id}/availability"
    response = await client.put(path, json=body, headers=ADMIN)
    assert_400(response)
    assert response.json()["error"]["details"][0]["field"] == field
    ok = await client.put(path, json={"available": False, "capacity": 7}, headers=ADMIN)
    assert ok.status_code == 200, ok.text
    assert (ok.json()["available"], ok.json()["capacity"]) == (False, 7)


async def test_a_huge_number_on_a_model_route_names_the_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/principals",
        content=b'{"name":' + BIG_NUMBER + b"}",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert "parsing the body" in assert_400(response)
