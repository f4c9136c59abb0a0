"""Deterministic CPU profile of the webhook, in process: the real app (``create_app``) on a fresh,
migrated PostgreSQL database, driven through ``httpx.ASGITransport`` one message at a time under
cProfile, then summed by package. Complements ``run.py --profile`` (py-spy sampling of the real
server). cProfile inflates call-heavy code (SQLAlchemy) more than C-heavy code; read shares, not ms.

    .venv/bin/python bench/webhook/cprofile_inproc.py [--requests 350] [--out /tmp/cprof.out]
        [--no-profile] [--sql] [--first-contact]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import time
import uuid

import asyncpg
import httpx
from sqlalchemy import event

ADMIN = os.environ.get("BENCH_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/test")


async def profile(
    n: int, out: str, *, enabled: bool = True, show_sql: bool = False, first_contact: bool = False
) -> float:
    for key in [k for k in os.environ if k.startswith("AI_CS_")]:
        del os.environ[key]
    os.environ.update(
        {
            "AI_CS_POSTGRES_ENABLED": "true",
            "AI_CS_WEBHOOK_SECRET": "s3cret",
            "AI_CS_RUNTIME_ENV": "test",
            "AI_CS_LOG_LEVEL": "warning",
            "AI_CS_LOG_FORMAT": "json",
            "AI_CS_RATE_LIMIT_MESSAGES": "0",  # as the shared harness: measure the path, not the limit
        }
    )
    name = "aics_bench_cprof_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    os.environ["AI_CS_POSTGRES_DSN"] = ADMIN.rsplit("/", 1)[0] + f"/{name}?sslmode=disable"
    try:
        from ai_customer_service.config import load_settings
        from ai_customer_service.logs import configure_logging
        from ai_customer_service.main import create_app
        from ai_customer_service.security.signing import sign
        from ai_customer_service.server import prepare_database

        settings = load_settings(env_file=None)
        configure_logging(settings)
        db = await prepare_database(settings)
        app = create_app(settings, db=db)
        statements: list[str] = []

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def _count(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements.append(statement)

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                reqs = []
                for i in range(n + 50):
                    body = json.dumps(
                        {
                            "channel": "widget",
                            # first contact: a new customer every message (a session created each time)
                            "open_id": f"new{i}" if first_contact else f"c{i % 50}",
                            "message_id": f"m{i}",
                            "content": "How do I reset my API key?",
                        }
                    ).encode()
                    ts = str(int(time.time()))
                    reqs.append(
                        (
                            body,
                            {
                                "Content-Type": "application/json",
                                "X-CS-Timestamp": ts,
                                "X-CS-Signature": sign("s3cret", ts, body),
                            },
                        )
                    )
                for body, headers in reqs[:50]:  # warm-up: sessions exist, statement caches filled
                    (
                        await client.post("/api/v1/customer-service/webhook", content=body, headers=headers)
                    ).raise_for_status()
                # CPU time, not wall time: waiting in epoll is not cost (the machine is shared)
                prof = cProfile.Profile(time.process_time)
                statements.clear()
                cpu0 = time.process_time()
                if enabled:
                    prof.enable()
                for body, headers in reqs[50:]:
                    (
                        await client.post("/api/v1/customer-service/webhook", content=body, headers=headers)
                    ).raise_for_status()
                prof.disable()
                cpu = (time.process_time() - cpu0) / n * 1000
                print(f"SQL statements per message: {len(statements) / n:.2f}")
                if show_sql:
                    for text in statements[-len(statements) // n :]:
                        print("  " + " ".join(text.split())[:160])
                if enabled:
                    prof.dump_stats(out)
        await db.dispose()
        return cpu
    finally:
        conn = await asyncpg.connect(ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def by_package(path: str, n: int) -> None:
    stats = pstats.Stats(path)
    total = 0.0
    groups: collections.Counter[str] = collections.Counter()
    for (fn, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        if "site-packages/" in fn:
            key = fn.split("site-packages/")[1].split("/")[0]
        elif "ai_customer_service/" in fn:
            key = "ai_customer_service/" + fn.split("ai_customer_service/")[1].split("/")[0]
        elif fn == "~":
            key = "C: " + name[:50]
        elif "python3.11/" in fn:
            key = "stdlib: " + fn.split("python3.11/")[1].split("/")[0]
        else:
            key = fn
        groups[key] += tt
    print(
        f"self time by package ({n} requests, {total / n * 1000:.2f} ms/request under cProfile; "
        "the httpx rows are the in-process client)"
    )
    for key, tt in groups.most_common(25):
        print(f"{100 * tt / total:5.1f}%  {tt / n * 1000:6.2f} ms/req  {key}")
    print("\ntop functions by self time")
    stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=350)
    ap.add_argument("--out", default="/tmp/aics-webhook-cprofile.out")
    ap.add_argument("--no-profile", action="store_true", help="only CPU per request, without cProfile")
    ap.add_argument("--sql", action="store_true", help="print one message's SQL statements")
    ap.add_argument(
        "--first-contact",
        action="store_true",
        help="every message from a new customer (else 50 returning)",
    )
    args = ap.parse_args()
    cpu = asyncio.run(
        profile(
            args.requests,
            args.out,
            enabled=not args.no_profile,
            show_sql=args.sql,
            first_contact=args.first_contact,
        )
    )
    if args.no_profile:
        print(f"process CPU per request (client included, no profiler): {cpu:.2f} ms")
        return
    print(f"process CPU per request under cProfile: {cpu:.2f} ms")
    by_package(args.out, args.requests)


if __name__ == "__main__":
    main()
