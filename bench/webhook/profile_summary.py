"""Summarise a ``py-spy record --format raw`` file (collapsed stacks): where the server's samples go.

    .venv/bin/python bench/webhook/profile_summary.py profile.txt [--top 25] [--grep TEXT]

Prints the total samples, the top frames by *self* samples (leaf), the top frames by *inclusive*
samples (anywhere in the stack, counted once per stack), and the inclusive share of a few buckets
(SQLAlchemy ORM/Core, asyncpg, logging, JSON, pydantic, FastAPI/Starlette, uvicorn, dialog, ...).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

BUCKETS = {
    "sqlalchemy (all)": "sqlalchemy/",
    "sqlalchemy orm (session/flush/unitofwork/loading)": "sqlalchemy/orm/",
    "sqlalchemy sql compile/cache key": "sqlalchemy/sql/",
    "sqlalchemy pool (checkout/pre-ping/return)": "sqlalchemy/pool/",
    "asyncpg": "asyncpg/",
    "logging / structlog / rich": r"(logging/__init__|structlog/|rich/)",
    "json (stdlib)": r"json/",
    "pydantic": "pydantic",
    "fastapi": "fastapi/",
    "starlette": "starlette/",
    "uvicorn": "uvicorn/",
    "prometheus_client": "prometheus_client/",
    "dialog": "ai_customer_service/dialog/",
    "webhook signature+schemas": r"ai_customer_service/webhook/(signature|schemas)",
    "ingest service (own frames)": "ai_customer_service/webhook/service",
    "uuid": r"uuid\.py",
    "datetime/zoneinfo": r"(datetime|zoneinfo)",
}


STAGES = {
    "FastAPI sync dependencies in the thread pool (run_in_threadpool)": "run_in_threadpool",
    "webhook signature check": "verify_request",
    "body parse + validation (parse_inbound)": "parse_inbound",
    "pre-transaction dedup lookup (_previous_response)": "_previous_response",
    "dialog analyze (rules)": "RulesDialog.analyze",
    "dialog decide": "RulesDialog.decide",
    "transaction open (sessionmaker/begin)": r"Database\.transaction \(ai_customer_service/db/engine.py:81\)",
    "claim_dedup (INSERT .. ON CONFLICT)": "claim_dedup",
    "open_session (SELECT .. FOR UPDATE)": "open_session",
    "rate limit count (recent_inbound)": "recent_inbound",
    "add_message / audit.record (ORM objects)": r"(add_message|audit/repository)",
    "store_dedup_response (UPDATE, ORM-enabled)": "store_dedup_response",
    "flush (ORM unit of work: 2 messages + audit + session UPDATE)": r"(AsyncSession\.flush|Session\._flush)",
    "commit": r"(AsyncSessionTransaction\.__aexit__|SessionTransaction\.commit|\.commit \()",
    "pool checkout incl. pre-ping": r"(_ConnectionFairy\._checkout|do_ping|_do_ping)",
    "new PostgreSQL connections (pool overflow churn)": r"(__connect_addr|_connect_addr|connect_utils)",
    "SQL statement compile / cache key": r"(_compiler|cache_key|_generate_cache_key|compile)",
    "response model validation/serialisation": r"(serialize_response|jsonable_encoder|_prepare_response_content)",  # noqa: E501
    "request/metrics/logging in middleware (own frames)": r"RequestContextMiddleware\.__call__ \(ai_customer_service/http/middleware.py:(9\d|1\d\d)\)",  # noqa: E501
    "prometheus metrics": "prometheus_client",
    "logging (structlog/logging)": r"(structlog/|logging/__init__)",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--grep", help="only stacks containing this text")
    args = ap.parse_args()
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    with open(args.path, errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, n = line.rpartition(" ")
            try:
                count = int(n)
            except ValueError:
                continue
            if args.grep and args.grep not in stack:
                continue
            frames = stack.split(";")
            total += count
            self_c[_short(frames[-1])] += count
            for f in {_short(f) for f in frames}:
                incl[f] += count
            for name, pat in BUCKETS.items():
                if re.search(pat, stack):
                    buckets[name] += count
            for name, pat in STAGES.items():
                if re.search(pat, stack):
                    stages[name] += count
    print(f"total samples: {total}")
    print("\n== top self (leaf) frames ==")
    for f, c in self_c.most_common(args.top):
        print(f"{100 * c / total:6.1f}%  {f}")
    print("\n== top inclusive frames ==")
    for f, c in incl.most_common(args.top):
        print(f"{100 * c / total:6.1f}%  {f}")
    print("\n== buckets (inclusive, a stack may be in several) ==")
    for name, c in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"{100 * c / total:6.1f}%  {name}")
    print("\n== request stages (inclusive) ==")
    for name, c in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"{100 * c / total:6.1f}%  {name}")


def _short(frame: str) -> str:
    frame = re.sub(r"/.*?site-packages/", "", frame)
    frame = re.sub(r"/work/[^ ]*?/src/", "", frame)
    frame = re.sub(r"/root/\.pyenv/versions/[^/]+/lib/python3\.11/", "", frame)
    return frame


if __name__ == "__main__":
    main()
