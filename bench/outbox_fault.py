"""Fault-injection run of the outbox on PostgreSQL (contract §7, issue 6 acceptance 3).

2 worker processes (``ai-customer-service outbox worker``), 1,000 events over 50 sessions emitted
with ``emit`` while the workers run, a receiver that verifies signatures and fails 30 % of requests
with 500 and lets 5 % time out, and one worker SIGKILLed midway and restarted. Checks: every event id
received (acknowledged) at least once, per-session order never violated, duplicates only for events
the killed worker held in flight. Prints a JSON report.

    .venv/bin/python bench/outbox_fault.py [--events 1000 --sessions 50]

Needs a PostgreSQL server (``AI_CS_TEST_POSTGRES_DSN``, default the local trust-auth one).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from tests.support import databases  # noqa: E402
from tests.support.outbox import CALLBACK_SECRET  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.server import clean_env, service_command  # noqa: E402

from ai_customer_service.config import load_settings  # noqa: E402
from ai_customer_service.db.engine import Database  # noqa: E402
from ai_customer_service.db.migrate import upgrade  # noqa: E402
from ai_customer_service.outbox.events import EventType, emit  # noqa: E402
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent  # noqa: E402

TYPES = list(EventType)


def fault_plan(fail: float, timeout: float):
    def behaviour(payload: dict[str, Any], nth: int) -> int | str:
        seed = hashlib.sha256(f"{payload['id']}:{nth}".encode()).digest()
        roll = random.Random(seed).random()
        if roll < timeout:
            return "timeout"
        if roll < timeout + fail:
            return 500
        return 200

    return behaviour


def start_worker(env: dict[str, str], log_dir: Path, n: int) -> subprocess.Popen[bytes]:
    log = (log_dir / f"worker-{n}.log").open("ab")
    proc = subprocess.Popen(
        service_command("outbox", "worker"),
        env=clean_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_dir,
    )
    log.close()
    return proc


async def run(args: argparse.Namespace) -> dict[str, Any]:
    receiver = Receiver(secret=CALLBACK_SECRET, timeout_sleep=args.timeout_ms / 1000 * 2)
    receiver.behaviour = fault_plan(args.fail, args.timeout)
    receiver.start()
    name = await databases.create_database("aics_bench")
    work = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    env = {
        "AI_CS_RUNTIME_ENV": "development",
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_DATA_DIR": str(work / "var"),
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": databases.dsn_for(name),
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": "ingress",
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": receiver.url,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": CALLBACK_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_TIMEOUT_MS": str(args.timeout_ms),
        "AI_CS_PLATFORM_SUB2API_CALLBACK_MAX_RETRIES": "50",
        "AI_CS_OUTBOX_RETRY_BASE_SECONDS": "0.05",
        "AI_CS_OUTBOX_RETRY_CAP_SECONDS": "1",
        "AI_CS_OUTBOX_LEASE_SECONDS": str(args.lease),
        "AI_CS_OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
        "AI_CS_OUTBOX_BATCH_SIZE": "20",
        "AI_CS_OUTBOX_CONCURRENCY": "10",
    }
    settings = load_settings(env, env_file=None)
    db = Database(settings)
    workers: list[subprocess.Popen[bytes]] = []
    report: dict[str, Any] = {}
    try:
        await upgrade(db.engine)
        workers = [start_worker(env, work, 1), start_worker(env, work, 2)]
        sessions = [uuid.uuid4() for _ in range(args.sessions)]
        emitted: dict[str, list[str]] = defaultdict(list)
        started = time.monotonic()

        async def producer() -> None:
            per_tx = 10
            for start in range(0, args.events, per_tx):
                async with db.transaction() as tx:
                    for n in range(start, min(start + per_tx, args.events)):
                        sid = sessions[n % args.sessions]
                        k = len(emitted[str(sid)])
                        event_id = emit(
                            tx,
                            destination="sub2api",
                            type=TYPES[n % len(TYPES)],
                            session_id=sid,
                            data={"k": k},
                        )
                        emitted[str(sid)].append(str(event_id))
                await asyncio.sleep(0.02)

        production = asyncio.create_task(producer())
        # kill worker 1 once about half of the events were acknowledged
        while len({r.payload["id"] for r in receiver.acknowledged()}) < args.events // 2:
            await asyncio.sleep(0.05)
        victim = workers[0]
        held_by_victim = select(OutboxEvent.id).where(
            OutboxEvent.status == "pending", OutboxEvent.claimed_by.like(f"%:{victim.pid}:%")
        )
        for _ in range(200):  # kill it while it holds claims, the interesting moment
            async with db.transaction() as tx:
                if (await tx.execute(held_by_victim)).first() is not None:
                    break
            await asyncio.sleep(0.005)
        await asyncio.sleep(args.kill_delay_ms / 1000)  # let some of its POSTs reach the receiver
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        async with db.transaction() as tx:
            in_flight = {str(i) for i in (await tx.execute(held_by_victim)).scalars()}
        killed_at = round(time.monotonic() - started, 2)
        workers.append(start_worker(env, work, 3))
        await production

        deadline = time.monotonic() + args.deadline
        while time.monotonic() < deadline:
            async with db.transaction() as tx:
                left = (
                    await tx.execute(
                        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status != "delivered")
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.2)
        elapsed = round(time.monotonic() - started, 2)

        async with db.transaction() as tx:
            statuses = dict(
                (
                    await tx.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))
                ).all()
            )
            attempt_rows = (await tx.execute(select(func.count()).select_from(OutboxAttempt))).scalar_one()
            outcomes = dict(
                (
                    await tx.execute(
                        select(OutboxAttempt.outcome, func.count()).group_by(OutboxAttempt.outcome)
                    )
                ).all()
            )

        received = list(receiver.received)
        answers = Counter(str(r.answer) for r in received)
        acked = Counter(r.payload["id"] for r in received if r.answer == 200)
        all_ids = {i for ids in emitted.values() for i in ids}
        missing = all_ids - set(acked)
        duplicates = {i for i, c in acked.items() if c > 1}

        # order: nothing of a session arrives before all its earlier events were acknowledged
        violations = 0
        seen_ok: dict[str, set[str]] = defaultdict(set)
        for r in received:
            sid = r.payload["session_id"]
            k = emitted[sid].index(r.payload["id"])
            if not set(emitted[sid][:k]) <= seen_ok[sid]:
                violations += 1
            if r.answer == 200:
                seen_ok[sid].add(r.payload["id"])

        report = {
            "events": args.events,
            "sessions": args.sessions,
            "fault_plan": {"fail_500": args.fail, "timeout": args.timeout, "timeout_ms": args.timeout_ms},
            "worker_killed_after_s": killed_at,
            "killed_worker_in_flight_claims": len(in_flight),
            "requests_without_recorded_attempt": len(received) - attempt_rows,
            "elapsed_s": elapsed,
            "requests_received": len(received),
            "answers": dict(answers),
            "bad_signatures": receiver.bad_signatures,
            "unique_ids_acknowledged": len(acked),
            "missing": len(missing),
            "duplicate_acknowledged_ids": len(duplicates),
            "duplicates_outside_killed_in_flight": len(duplicates - in_flight),
            "order_violations": violations,
            "final_status_counts": statuses,
            "attempt_rows": attempt_rows,
            "attempt_outcomes": outcomes,
        }
        report["ok"] = (
            report["missing"] == 0
            and report["order_violations"] == 0
            and report["duplicates_outside_killed_in_flight"] == 0
            and report["bad_signatures"] == 0
            and statuses.get("delivered") == args.events
        )
        return report
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        await db.dispose()
        receiver.stop()
        if not args.keep:
            await databases.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--fail", type=float, default=0.30)
    parser.add_argument("--timeout", type=float, default=0.05)
    parser.add_argument("--timeout-ms", type=int, default=1000)
    parser.add_argument("--lease", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=600)
    parser.add_argument("--kill-delay-ms", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    sys.exit(0 if report.get("ok") else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
