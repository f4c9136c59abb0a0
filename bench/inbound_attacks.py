"""Issue #12 items 1, 2 and 5 tried as an attacker would, against a real server on PostgreSQL.

Starts ``ai-customer-service serve`` on a fresh PostgreSQL database with the sub2api platform and a
widget channel callback (two real receivers that verify signatures), then:

1. a widget customer asks for a refund (a ticket); sub2api, signing with its own ingress secret,
   posts to ``/platforms/sub2api/webhook/widget`` with the same ``open_id``; the victim writes again
   and an agent replies. Which receiver got which session's events?
2. the victim's signed message re-sent to other channel paths; a signed CSAT re-sent to other
   sessions' ``/feedback``; the identical retry.
3. N replays of one signed message: rows in every table before and after, ``message.deduplicated``
   events.

    .venv/bin/python bench/inbound_attacks.py [--replays 300]

Needs PostgreSQL at AI_CS_TEST_POSTGRES_DSN (default: local trust auth). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import databases
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.webhooks import signed

API = "/api/v1/customer-service"
WEBHOOK_SECRET = "gateway-secret-0123456789abcdef0123456789"
SUB2API_INGRESS = "sub2api-ingress-0123456789abcdef012345678"
WIDGET_CB, SUB2API_CB = "widget-callback-secret-0123456789abcdef", "sub2api-callback-secret-0123456789abcdef"


async def row_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn.split("?")[0])
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in sorted(tables)}
    finally:
        await conn.close()


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def wait_quiet(*receivers: Receiver, seconds: float = 1.5, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = sum(len(r.received) for r in receivers)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replays", type=int, default=300)
    args = parser.parse_args()
    name = asyncio.run(databases.create_database("aics_attack"))
    dsn = databases.dsn_for(name)
    widget, sub2api = Receiver(secret=WIDGET_CB).start(), Receiver(secret=SUB2API_CB).start()
    env = {
        "AI_CS_RUNTIME_ENV": "production",
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": dsn,
        "AI_CS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "AI_CS_ADMIN_TOKEN": "admin-token-0123456789abcdef0123456789ab",
        "AI_CS_EMBEDDING_MODEL": "hashing",
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": SUB2API_INGRESS,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": sub2api.url,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": SUB2API_CB,
        "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": widget.url,
        "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": WIDGET_CB,
        "AI_CS_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "AI_CS_RATE_LIMIT_MESSAGES": "0",
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(env=env, cwd=Path(tmp)).start()
        try:
            api = httpx.Client(base_url=server.url + API, timeout=30)

            def post(
                path: str, body: dict[str, Any] | bytes, secret: str
            ) -> tuple[httpx.Response, bytes, dict]:
                raw, headers = signed(body, secret)
                return api.post(path, content=raw, headers=headers), raw, headers

            # 1. the takeover
            victim, v_raw, v_headers = post(
                "/webhook/widget",
                {"open_id": "victim-1", "message_id": "w-1", "content": "I want a refund"},
                WEBHOOK_SECRET,
            )
            v = victim.json()
            assert victim.status_code == 200, server.logs()[-3000:]
            attack, _, _ = post(
                "/platforms/sub2api/webhook/widget",
                {"open_id": "victim-1", "message_id": "s-1", "content": "what is my ticket?"},
                SUB2API_INGRESS,
            )
            a = attack.json()
            later, _, _ = post(
                "/webhook/widget",
                {"open_id": "victim-1", "message_id": "w-2", "content": "any news?"},
                WEBHOOK_SECRET,
            )
            boot = {"Authorization": f"Bearer {env['AI_CS_ADMIN_TOKEN']}"}
            agent = api.post("/principals", json={"name": "agent", "role": "agent"}, headers=boot).json()
            api.post(f"/tickets/{v['ticket_id']}/assign", json={"agent_id": agent["id"]}, headers=boot)
            reply = api.post(
                f"/tickets/{v['ticket_id']}/reply",
                json={"content": "we are on it"},
                headers={"Authorization": f"Bearer {agent['token']}"},
            )
            wait_quiet(widget, sub2api)
            out["takeover"] = {
                "victim_session": v["session_id"],
                "attacker_ack": {k: a[k] for k in ("session_id", "ticket_id", "duplicate")},
                "attacker_got_victims_session_or_ticket": a["session_id"] == v["session_id"]
                or a["ticket_id"] == v["ticket_id"],
                "victim_later_same_session": later.json()["session_id"] == v["session_id"],
                "agent_reply_status": reply.status_code,
                "widget_receiver_events_of_victim": Counter(
                    e.payload["type"] for e in widget.received if e.payload["session_id"] == v["session_id"]
                ),
                "sub2api_receiver_events_of_victim": sum(
                    1 for e in sub2api.received if e.payload["session_id"] == v["session_id"]
                ),
                "sub2api_receiver_events_total": len(sub2api.received),
                "bad_callback_signatures": widget.bad_signatures + sub2api.bad_signatures,
            }

            # 2. cross-path and cross-session replays
            tried: Counter[str] = Counter()
            for path in ("/webhook/telegram", "/webhook/discord", "/webhook/wechat", "/webhook/WIDGET"):
                r = api.post(path, content=v_raw, headers=v_headers)
                tried[f"{r.status_code} {r.json().get('error', {}).get('code', 'ok')}"] += 1
            retry = api.post("/webhook/widget", content=v_raw, headers=v_headers)
            sessions = [
                post("/webhook/widget", {"open_id": f"other-{i}", "content": "hello"}, WEBHOOK_SECRET)[
                    0
                ].json()["session_id"]
                for i in range(3)
            ]
            rating, r_headers = signed({"score": 1, "comment": "terrible"}, WEBHOOK_SECRET)
            first_rating = api.post(
                f"/sessions/{v['session_id']}/feedback", content=rating, headers=r_headers
            )
            for sid in sessions:
                r = api.post(f"/sessions/{sid}/feedback", content=rating, headers=r_headers)
                tried[f"feedback {r.status_code} {r.json().get('error', {}).get('code', 'ok')}"] += 1
            again = api.post(f"/sessions/{v['session_id']}/feedback", content=rating, headers=r_headers)
            out["replays"] = {
                "refused": dict(tried),
                "same_path_retry": [retry.status_code, retry.json().get("duplicate")],
                "feedback_first_and_retry": [first_rating.status_code, again.status_code],
            }

            # 3. the duplicate flood
            flood_body = {"open_id": "flood-1", "message_id": "f-1", "content": "how do I reset my password"}
            first, f_raw, f_headers = post("/webhook/widget", flood_body, WEBHOOK_SECRET)
            wait_quiet(widget, sub2api)
            before = asyncio.run(row_counts(dsn))
            started = time.monotonic()
            statuses: Counter[str] = Counter()
            for _ in range(args.replays):
                r = api.post("/webhook/widget", content=f_raw, headers=f_headers)
                statuses[f"{r.status_code} duplicate={r.json().get('duplicate')}"] += 1
            seconds = time.monotonic() - started
            wait_quiet(widget, sub2api)
            after = asyncio.run(row_counts(dsn))
            out["duplicate_flood"] = {
                "replays": args.replays,
                "answers": dict(statuses),
                "seconds": round(seconds, 2),
                "row_changes": diff(before, after),
                "message.deduplicated_delivered": sum(
                    1
                    for e in widget.received
                    if e.payload["type"] == "message.deduplicated"
                    and e.payload["session_id"] == first.json()["session_id"]
                ),
            }
            out["server_5xx_in_log"] = server.logs().count("status=5")
        finally:
            server.stop()
            widget.stop()
            sub2api.stop()
            asyncio.run(databases.drop_database(name))
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
