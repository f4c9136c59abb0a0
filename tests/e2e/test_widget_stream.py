"""The widget's live stream against real server processes: an agent's reply arrives (also through
another process), typing indicators, resumption by Last-Event-ID without loss or repeat, isolation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ai_customer_service.widget.service import DEMO_SITE_KEY
from tests.support.knowledge import wait_for_knowledge
from tests.support.server import ServerProcess

API = "/api/v1/customer-service"
ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def servers(db_env: dict[str, str], tmp_path: Path) -> Iterator[list[ServerProcess]]:
    env = {
        **db_env,
        "AI_CS_RUNTIME_ENV": "development",
        "AI_CS_DEMO_KB": "true",
        "AI_CS_ADMIN_TOKEN": "admin-token",
        "AI_CS_WEBHOOK_SECRET": "",
        "AI_CS_WIDGET_DEMO_ORIGINS": "http://demo.test",
    }
    procs = [ServerProcess(env=env, cwd=tmp_path) for _ in range(2)]
    try:
        procs[0].start(timeout=60)  # the first loads the demo KB and site; then the second
        procs[1].start(timeout=60)
        for proc in procs:
            wait_for_knowledge(proc.url)
        yield procs
    finally:
        for proc in procs:
            proc.stop()


class Visitor:
    def __init__(self, base: str) -> None:
        self.base = base
        self.headers = {"Origin": "http://demo.test"}
        started = httpx.post(self.url("/conversation"), headers=self.headers)
        assert started.status_code == 200, started.text
        self.headers["X-CS-Visitor-Token"] = started.json()["visitor_token"]

    def url(self, path: str) -> str:
        return f"{self.base}{API}/widget/{DEMO_SITE_KEY}{path}"

    def send(self, text: str, client_id: str) -> dict[str, Any]:
        r = httpx.post(
            self.url("/messages"),
            json={"client_message_id": client_id, "content": text},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


class Stream:
    """Reads one SSE connection in a thread, collecting (id, event, data)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[str | None, str, dict[str, Any]]] = []
        self.status: int | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        assert self._ready.wait(20), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=30.0)) as client,
            client.stream("GET", url, headers=headers) as r,
        ):
            self.status = r.status_code
            if r.status_code != 200:
                self.body = r.read().decode()
                self._ready.set()
                return
            frame: dict[str, str] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if "event" in frame:
                        self.events.append(
                            (frame.get("id"), frame["event"], json.loads(frame.get("data", "{}")))
                        )
                        if frame["event"] == "ready":
                            self._ready.set()
                    frame = {}
                elif not line.startswith(":") and ":" in line:
                    key, _, value = line.partition(":")
                    frame[key] = value.strip()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> tuple[str | None, str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no matching event in {self.events}")

    def close(self) -> None:
        self._stop.set()


def agent(base: str) -> dict[str, str]:
    created = httpx.post(f"{base}{API}/principals", json={"name": "alice", "role": "agent"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


def test_agent_replies_reach_the_widget_live_across_processes_and_resume(
    servers: list[ServerProcess],
) -> None:
    widget_side, agent_side = servers
    visitor = Visitor(widget_side.url)
    handed = visitor.send("转人工", "c-1")
    assert handed["handoff"] is True
    session_id = handed["session"]["id"]
    stream_url = visitor.url(f"/stream?session_id={session_id}")
    stream = Stream(stream_url, visitor.headers)
    alice = agent(agent_side.url)
    ticket_id = httpx.get(
        f"{agent_side.url}{API}/tickets", params={"channel": "widget"}, headers=alice
    ).json()["items"][0]["id"]
    assert (
        httpx.post(f"{agent_side.url}{API}/tickets/{ticket_id}/assign", json={}, headers=alice).status_code
        == 200
    )
    stream.wait_for(lambda e: e[1] == "agent_joined")
    typing = httpx.post(
        f"{agent_side.url}{API}/sessions/{session_id}/typing", json={"active": True}, headers=alice
    )
    assert typing.status_code == 202
    stream.wait_for(lambda e: e[1] == "typing" and e[2]["active"] is True)
    reply = httpx.post(
        f"{agent_side.url}{API}/tickets/{ticket_id}/reply", json={"content": "Hi, Alice here."}, headers=alice
    )
    assert reply.status_code == 200, reply.text
    last_id, _, shown = stream.wait_for(lambda e: e[1] == "message" and e[2]["author"] == "agent")
    assert shown["content"] == "Hi, Alice here." and shown["author_name"] == "alice"
    assert set(shown) == {
        "id",
        "session_id",
        "author",
        "author_name",
        "content",
        "citations",
        "choices",
        "created_at",
    }
    stream.close()
    history = httpx.get(visitor.url("/messages"), headers=visitor.headers).json()["messages"]
    assert [(m["author"], m["author_name"]) for m in history if m["author"] == "agent"] == [
        ("agent", "alice")
    ]

    # the connection drops; two more replies; the resumed stream brings exactly those two
    for text in ("second reply", "third reply"):
        assert (
            httpx.post(
                f"{agent_side.url}{API}/tickets/{ticket_id}/reply", json={"content": text}, headers=alice
            ).status_code
            == 200
        )
    resumed = Stream(stream_url, {**visitor.headers, "Last-Event-ID": str(last_id)})
    resumed.wait_for(lambda e: e[1] == "message" and e[2]["content"] == "third reply")
    time.sleep(1.0)  # a repeated event would have arrived by now
    messages = [e[2]["content"] for e in resumed.events if e[1] == "message"]
    assert messages == ["second reply", "third reply"]
    ids = [int(e[0]) for e in resumed.events if e[0]]
    assert ids == sorted(set(ids)) and min(ids) > int(last_id or 0)
    resumed.close()


def test_a_visitor_cannot_follow_another_visitors_session(servers: list[ServerProcess]) -> None:
    alice, mallory = Visitor(servers[0].url), Visitor(servers[0].url)
    session_id = alice.send("hello", "a-1")["session"]["id"]
    spy = Stream(mallory.url(f"/stream?session_id={session_id}"), mallory.headers)
    assert spy.status == 404 and json.loads(spy.body)["error"]["code"] == "CS_WGT_4042"
    bad = Stream(alice.url(f"/stream?session_id={session_id}"), {**alice.headers, "Last-Event-ID": "x"})
    assert bad.status == 400
