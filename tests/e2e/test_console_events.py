"""``GET /console/events`` against a real server: what changed (type, ids, seq), never the content;
resuming with ``Last-Event-ID`` replays what was missed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from ai_customer_service.auth.models import Role
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.support.console import PASSWORD, make_person
from tests.support.server import ServerProcess
from tests.support.webhooks import WEBHOOK, message, signed


def _events(client: httpx.Client, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with client.stream("GET", "/console/events", headers=headers, timeout=20) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        for line in stream.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                out.append(current)
                current = {}
                if len(out) >= count:
                    break
    return out


async def test_the_stream_says_what_changed_and_resumes(
    db: Database, db_env: dict[str, str], tmp_path: Path
) -> None:
    await make_person(db, "zoe", Role.AGENT)
    env = {**db_env, "AI_CS_CONSOLE_COOKIE_SECURE": "false", "AI_CS_LIVE_POLL_INTERVAL_MS": "100"}
    server = ServerProcess(env=env, cwd=tmp_path).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            form = client.get("/console/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf
            signed_in = client.post(
                "/console/login", data={"username": "zoe", "password": PASSWORD, "csrf_token": csrf.group(1)}
            )
            assert signed_in.status_code == 303
            raw, headers = signed(
                message("我要退款 secret-content", open_id="c-sse", message_id="s-1"), TEST_SECRET
            )
            assert httpx.post(server.url + WEBHOOK, content=raw, headers=headers).status_code == 200
            # from the start of the table (Last-Event-ID 0): the handoff's events, in order
            events = _events(client, {"Last-Event-ID": "0"}, 3)
            types = [e["data"]["type"] for e in events]
            assert types[0] == "message.received"
            assert [e["id"] for e in events] == sorted(e["id"] for e in events)
            assert all("secret-content" not in json.dumps(e) for e in events)
            assert set(events[0]["data"]) == {"seq", "type", "ticket_id", "session_id"}
            # resuming after the first event replays the rest, none twice
            again = _events(client, {"Last-Event-ID": str(events[0]["id"])}, 2)
            assert [e["id"] for e in again] == [e["id"] for e in events[1:3]]
    finally:
        server.stop()


async def test_a_draining_server_ends_its_streams(
    db: Database, db_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM with a console stream open: the stream ends (the browser reconnects elsewhere) and the
    server exits cleanly instead of waiting out its 20 s grace period for the stream."""
    import signal
    import threading

    await make_person(db, "yan", Role.AGENT)
    env = {**db_env, "AI_CS_CONSOLE_COOKIE_SECURE": "false", "AI_CS_SHUTDOWN_GRACE_SECONDS": "20"}
    server = ServerProcess(env=env, cwd=tmp_path).start()
    ended = threading.Event()
    try:
        client = httpx.Client(base_url=server.url)
        form = client.get("/console/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf
        client.post(
            "/console/login", data={"username": "yan", "password": PASSWORD, "csrf_token": csrf.group(1)}
        )
        opened = threading.Event()

        def listen() -> None:
            with client.stream("GET", "/console/events", timeout=60) as stream:
                opened.set()
                for _ in stream.iter_lines():
                    pass
            ended.set()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        assert opened.wait(10)
        assert server.stop(signal.SIGTERM, timeout=15) == 0
        thread.join(10)
        assert ended.is_set()
        client.close()
    finally:
        server.stop()
