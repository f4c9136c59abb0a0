"""The runbook's chain against a real server: signed webhook → assign → reply → resolve → close."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess
from tests.support.webhooks import WEBHOOK, message, signed

API = "/api/v1/customer-service"


@pytest.fixture
def server(db_env: dict[str, str], tmp_path: Path):
    proc = ServerProcess(env={**db_env, "AI_CS_ADMIN_TOKEN": "boot-admin"}, cwd=tmp_path)
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_webhook_assign_resolve_close_writes_exactly_three_audit_rows(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url + API, timeout=20) as client:
        _chain(server, client)


def _chain(server: ServerProcess, client: httpx.Client) -> None:
    boot = {"Authorization": "Bearer boot-admin"}

    def create(name: str, role: str) -> tuple[str, dict[str, str]]:
        created = client.post("/principals", json={"name": name, "role": role}, headers=boot)
        assert created.status_code == 201, created.text
        return created.json()["id"], {"Authorization": f"Bearer {created.json()['token']}"}

    sup_id, sup = create("sup-1", "supervisor")
    agent_id, agent = create("agent-1", "agent")

    def customer(text: str, mid: str) -> dict:
        raw, headers = signed(message(text, open_id="chain-cust", message_id=mid), TEST_SECRET)
        response = httpx.post(server.url + WEBHOOK, content=raw, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    first = customer("我要退款", "c-1")
    ticket_id, session_id = first["ticket_id"], first["session_id"]
    assert first["handoff"] and ticket_id
    ticket = client.get(f"/tickets/{ticket_id}", headers=sup).json()
    assert (ticket["priority"], ticket["status"]) == ("P1", "open")

    # the original's query-parameter style is still accepted
    assert client.post(f"/tickets/{ticket_id}/assign?agent_id={agent_id}", headers=sup).status_code == 200
    reply = client.post(
        f"/tickets/{ticket_id}/reply", json={"content": "您好，我来处理退款。"}, headers=agent
    )
    assert reply.status_code == 200, reply.text
    silent = customer("好的，谢谢", "c-2")
    assert silent["reply"] == "" and silent["ticket_id"] == ticket_id
    assert (
        client.post(
            f"/tickets/{ticket_id}/resolve", json={"resolution": "refunded"}, headers=agent
        ).status_code
        == 200
    )
    assert client.post(f"/tickets/{ticket_id}/close", headers=sup).status_code == 200

    rows = client.get(
        "/audit", params={"object_type": "ticket", "object_id": ticket_id, "order": "asc"}, headers=sup
    ).json()["items"]
    transitions = [r for r in rows if r["action"] in ("assign", "resolve", "close")]
    assert [r["action"] for r in transitions] == ["assign", "resolve", "close"]
    assert len(rows) == 4  # the three above plus the start (first agent reply) transition
    assert all(uuid.UUID(r["id"]) for r in rows)
    assert [r["actor_id"] for r in transitions] == [sup_id, agent_id, sup_id]

    messages = client.get(f"/sessions/{session_id}/messages", headers=sup).json()["items"]
    agent_msgs = [m for m in messages if m["author_type"] == "agent"]
    assert (
        len(agent_msgs) == 1
        and agent_msgs[0]["direction"] == "outbound"
        and agent_msgs[0]["author_id"] == agent_id
    )

    after = customer("还有个问题", "c-3")
    assert after["handoff"] is False and after["reply"]  # the bot answers again once the ticket is closed
