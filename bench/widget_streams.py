"""Widget streams under load: N concurrent open SSE streams on one server process, the memory they
take, and the time from an agent's reply (its API request sent) to its arrival on the visitor's stream.

    .venv/bin/python bench/widget_streams.py                     # 1,000 streams, 100 replies, SQLite
    .venv/bin/python bench/widget_streams.py --postgres          # the same on a fresh PostgreSQL database
    .venv/bin/python bench/widget_streams.py --streams 200 --replies 50

Setup: one ``ai-customer-service serve`` process (hashing embedder, demo KB), a site without rate
limits, N visitors each with a session (one message each through the widget API; every 10th asks for
a human, so ``--replies`` tickets exist), then N streams opened at once from this process (one
``httpx.AsyncClient``). Memory is the server's RSS (``/proc/<pid>/status``) before the streams and
with all of them open. Then the agent replies ``--replies`` times, one after another, each to a
different session; the latency is measured here (client clock on both ends). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import databases  # noqa: E402
from tests.support.server import ServerProcess, run_cli  # noqa: E402

API = "/api/v1/customer-service"
ORIGIN = "http://bench.test"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, base: str, key: str, pid: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.streams + 50, max_keepalive_connections=args.streams + 50)
    timeout = httpx.Timeout(30.0, read=120.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        widget = f"{API}/widget/{key}"
        sem = asyncio.Semaphore(20)

        async def visitor(i: int) -> tuple[dict[str, str], str]:
            async with sem:
                started = await client.post(f"{widget}/conversation", headers={"Origin": ORIGIN})
                headers = {"Origin": ORIGIN, "X-CS-Visitor-Token": started.json()["visitor_token"]}
                text = "转人工" if i % (args.streams // args.replies) == 0 else f"hello {i}"
                sent = await client.post(
                    f"{widget}/messages",
                    json={"client_message_id": f"b{i}", "content": text},
                    headers=headers,
                )
                sent.raise_for_status()
                return headers, sent.json()["session"]["id"]

        t0 = time.monotonic()
        visitors = await asyncio.gather(*(visitor(i) for i in range(args.streams)))
        setup_s = time.monotonic() - t0
        await asyncio.sleep(1.0)
        rss_before = rss_kib(pid)

        arrivals: dict[str, float] = {}
        ready = 0
        all_ready = asyncio.Event()

        async def stream(headers: dict[str, str], session_id: str) -> None:
            nonlocal ready
            async with client.stream(
                "GET", f"{widget}/stream", params={"session_id": session_id}, headers=headers
            ) as r:
                event, data = "", ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and event:
                        if event == "ready":
                            ready += 1
                            if ready == args.streams:
                                all_ready.set()
                        elif event == "message":
                            content = json.loads(data)["content"]
                            if content.startswith("bench-reply-"):
                                arrivals.setdefault(content, time.monotonic())
                        event, data = "", ""

        t1 = time.monotonic()
        tasks = [asyncio.create_task(stream(h, s)) for h, s in visitors]
        await asyncio.wait_for(all_ready.wait(), timeout=120)
        open_s = time.monotonic() - t1
        await asyncio.sleep(2.0)
        rss_open = rss_kib(pid)

        created = await client.post(
            f"{API}/principals",
            json={"name": "bench-agent", "role": "agent"},
            headers={"Authorization": "Bearer admin"},
        )
        agent = {"Authorization": f"Bearer {created.json()['token']}"}
        tickets = (
            await client.get(f"{API}/tickets", params={"channel": "widget", "page_size": 200}, headers=agent)
        ).json()["items"][: args.replies]
        sent_at: dict[str, float] = {}
        for n, ticket in enumerate(tickets):
            (
                await client.post(f"{API}/tickets/{ticket['id']}/assign", json={}, headers=agent)
            ).raise_for_status()
            content = f"bench-reply-{n}-{uuid.uuid4().hex[:6]}"
            sent_at[content] = time.monotonic()
            (
                await client.post(
                    f"{API}/tickets/{ticket['id']}/reply", json={"content": content}, headers=agent
                )
            ).raise_for_status()
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 20
        while len(arrivals) < len(sent_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        latencies = [(arrivals[c] - t) * 1000 for c, t in sent_at.items() if c in arrivals]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "streams": args.streams,
            "setup_seconds": round(setup_s, 1),
            "open_all_streams_seconds": round(open_s, 2),
            "server_rss_mib_before": round(rss_before / 1024, 1),
            "server_rss_mib_with_streams": round(rss_open / 1024, 1),
            "per_stream_kib": round((rss_open - rss_before) / args.streams, 1),
            "replies_sent": len(sent_at),
            "replies_arrived": len(latencies),
            "reply_to_arrival_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
            "reply_to_arrival_ms_p99": round(percentile(latencies, 99), 1) if latencies else None,
            "reply_to_arrival_ms_max": round(max(latencies), 1) if latencies else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=100)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 256)), hard))
    workdir = Path(tempfile.mkdtemp(prefix="widget-bench-"))
    env = {
        "AI_CS_RUNTIME_ENV": "development",
        "AI_CS_DATA_DIR": str(workdir / "var"),
        "AI_CS_EMBEDDING_MODEL": "hashing",
        "AI_CS_DEMO_KB": "true",
        "AI_CS_ADMIN_TOKEN": "admin",
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_RATE_LIMIT_MESSAGES": "0",
    }
    db_name = None
    if args.postgres:
        db_name = asyncio.run(databases.create_database())
        env.update({"AI_CS_POSTGRES_ENABLED": "true", "AI_CS_POSTGRES_DSN": databases.dsn_for(db_name)})
    created = run_cli(
        "sites", "create", "--name", "bench", "--origin", ORIGIN, "--rate-limit-messages", "0",
        "--rate-limit-visitors", "0", env=env, cwd=workdir,
    )  # fmt: skip
    if created.returncode != 0:
        raise SystemExit(created.stderr)
    key = created.stdout.split("key=")[1].split()[0]
    server = ServerProcess(env=env, cwd=workdir).start(timeout=90)
    try:
        assert server.proc is not None
        result = asyncio.run(run(args, server.url, key, server.proc.pid))
        result["store"] = "postgresql" if args.postgres else "sqlite"
        result["cpu_count"] = os.cpu_count()
        print(json.dumps(result, indent=2))
    finally:
        server.stop()
        if db_name:
            asyncio.run(databases.drop_database(db_name))


if __name__ == "__main__":
    main()
