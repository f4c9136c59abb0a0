"""Platform adapters end to end: a real server, a real receiver verifying signatures (contract §7)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.outbox import CALLBACK_SECRET
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.webhooks import message, signed

API = "/api/v1/customer-service"
INGRESS = {"sub2api": "sub2api-ingress-secret", "newapi": "newapi-ingress-secret"}


@pytest.fixture
def receiver():
    r = Receiver(secret=CALLBACK_SECRET).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def server(db_env: dict[str, str], receiver: Receiver, tmp_path: Path):
    env = {
        **db_env,
        "AI_CS_ADMIN_TOKEN": "boot-admin",
        "AI_CS_LOG_LEVEL": "info",
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
    }
    for name, secret in INGRESS.items():
        prefix = f"AI_CS_PLATFORM_{name.upper()}_"
        env |= {
            prefix + "ENABLED": "true",
            prefix + "INGRESS_SECRET": secret,
            prefix + "CALLBACK_BASE_URL": receiver.url,
            prefix + "CALLBACK_SECRET": CALLBACK_SECRET,
        }
    proc = ServerProcess(env=env, cwd=tmp_path)
    try:
        yield proc.start()
    finally:
        proc.stop()


def wait_for(receiver: Receiver, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = [r.payload for r in receiver.received if r.answer == 200]
        if len(ok) >= count:
            return ok
        time.sleep(0.1)
    raise AssertionError(f"received {len(receiver.received)} events, wanted {count}")


def post_platform(server: ServerProcess, platform: str, body: dict, path: str = "") -> httpx.Response:
    raw, headers = signed(body, INGRESS[platform])
    return httpx.post(f"{server.url}{API}/platforms/{platform}/webhook{path}", content=raw, headers=headers)


def test_handoff_message_then_ticket_lifecycle_events_in_order(
    server: ServerProcess, receiver: Receiver
) -> None:
    ack = post_platform(server, "sub2api", {"open_id": "p-cust", "message_id": "p-1", "content": "我要退款"})
    assert ack.status_code == 200, ack.text
    body = ack.json()
    assert body["accepted"] is True and body["platform"] == "sub2api" and body["ticket_id"]
    events = wait_for(receiver, 5)
    assert [e["type"] for e in events] == [
        "message.received",
        "intent.resolved",
        "handoff.triggered",
        "ticket.created",
        "reply.generated",
    ]
    assert events[0]["id"] == body["event_id"]
    assert {e["session_id"] for e in events} == {body["session_id"]}
    assert events[0]["platform"] == "sub2api" and events[0]["source_message_id"] == "p-1"
    assert set(events[0]) == {
        "id",
        "type",
        "occurred_at",
        "platform",
        "session_id",
        "ticket_id",
        "source_message_id",
        "attempt",
        "data",
    }

    boot = {"Authorization": "Bearer boot-admin"}
    with httpx.Client(base_url=server.url + API, timeout=20) as api:
        sup = api.post("/principals", json={"name": "sup", "role": "supervisor"}, headers=boot).json()
        agent = api.post("/principals", json={"name": "agent", "role": "agent"}, headers=boot).json()
        sup_h = {"Authorization": f"Bearer {sup['token']}"}
        agent_h = {"Authorization": f"Bearer {agent['token']}"}
        tid = body["ticket_id"]
        assert (
            api.post(f"/tickets/{tid}/assign", json={"agent_id": agent["id"]}, headers=sup_h).status_code
            == 200
        )
        assert (
            api.post(f"/tickets/{tid}/reply", json={"content": "正在处理"}, headers=agent_h).status_code
            == 200
        )
        assert (
            api.post(f"/tickets/{tid}/resolve", json={"resolution": "done"}, headers=agent_h).status_code
            == 200
        )
        assert api.post(f"/tickets/{tid}/close", headers=sup_h).status_code == 200
    events = wait_for(receiver, 9)
    assert [e["type"] for e in events[5:]] == [
        "ticket.assigned",
        "agent.replied",
        "ticket.resolved",
        "ticket.closed",
    ]
    assert all(e["ticket_id"] == tid for e in events[5:])
    assert receiver.bad_signatures == 0

    again = post_platform(
        server, "sub2api", {"open_id": "p-cust", "message_id": "p-1", "content": "我要退款"}
    )
    assert again.json()["duplicate"] is True and again.json()["event_id"] == body["event_id"]
    assert wait_for(receiver, 10)[-1]["type"] == "message.deduplicated"

    logs = server.logs()
    assert CALLBACK_SECRET not in logs and INGRESS["sub2api"] not in logs


def test_newapi_works_and_unknown_or_badly_signed_is_refused(
    server: ServerProcess, receiver: Receiver
) -> None:
    ok = post_platform(server, "newapi", message("hello", open_id="n-1", message_id="n-1"), path="/telegram")
    assert ok.status_code == 200 and ok.json()["platform"] == "newapi"
    raw, headers = signed(message("hi"), "wrong-secret")
    bad = httpx.post(f"{server.url}{API}/platforms/newapi/webhook", content=raw, headers=headers)
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "CS_AUTH_4034"
    raw, headers = signed(message("hi"), INGRESS["sub2api"])
    unknown = httpx.post(f"{server.url}{API}/platforms/nope/webhook", content=raw, headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "CS_PLATFORM_4041"
    events = wait_for(receiver, 3)
    assert events[0]["platform"] == "newapi" and events[0]["data"]["channel"] == "telegram"
