"""Benchmark of the signed webhook on PostgreSQL, next to its two baselines, in one run.

    .venv/bin/python bench/webhook/run.py --seconds 20

Phases (each timed phase lasts ``--seconds``; every process it starts is stopped at the end, and
it only talks to 127.0.0.1):

0. client ceiling: the load generator against a near-zero-cost raw responder (shows the client is
   not the bottleneck);
1. hello world: a tiny FastAPI app on uvicorn + uvloop + httptools; max rate (closed loop), then
   p50/p99 at half of it (open loop);
2. webhook: the real service (``python -m ai_customer_service serve``) on a fresh, migrated
   PostgreSQL database with ``--customers`` open sessions pre-created; signed, unique messages
   round-robin over the customers; max rate (closed loop), then p50/p99 at half of it (open loop);
3. raw transaction: ``pgbench -n -c 8 -j 2 -T <seconds> -f bench/webhook/ingest.sql`` against
   another fresh, migrated, equally seeded database on the same PostgreSQL server;
4. raw transaction v2: the same with ``ingest_v2.sql`` (the service's own statement sequence since
   run 6: 3 statements between BEGIN and COMMIT; ``--no-raw-v2`` skips it).

Prints one JSON summary on stdout (progress goes to stderr); ``--json-out`` also writes it to a file.
``--profile out.txt`` runs the server under ``py-spy record --format raw`` (collapsed stacks)
during phase 2 (numbers from a profiled run are lower; use it for the profile, not for the table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/test")
SECRET = "bench-secret-" + uuid.uuid4().hex[:8]
WEBHOOK_PATH = "/api/v1/customer-service/webhook"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return Path("/proc/loadavg").read_text().strip()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its live descendants (the server's worker processes)."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(kid) for kid in children(pid))


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Proc:
    """A child process we started; ``stop`` always ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None):
        self.name = name
        self.log_path = Path(tempfile.gettempdir()) / f"bench-{name}-{os.getpid()}.log"
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.target_pid = self.proc.pid  # the Python process doing the work (differs under py-spy)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 30.0) -> None:
        if self.target_pid != self.proc.pid:
            # under py-spy: stop the profiled server; py-spy then writes its output and exits
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.target_pid, signal.SIGTERM)
        elif self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log_file.close()


def wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.logs()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready within {timeout}s:\n{proc.logs()}")


def wait_port(port: int, proc: Proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.logs()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen within {timeout}s")


def loadgen(job: dict, server_pid: int | None = None) -> dict:
    """Run one load phase in a separate client process; adds the server's CPU use to the result."""
    timeout = float(job["seconds"]) + float(job.get("warmup", 0)) + 60
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    t0 = time.monotonic()
    out = subprocess.run(
        [PY, str(HERE / "loadgen.py")], input=json.dumps(job), capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if server_pid:
        wall = time.monotonic() - t0
        # includes the client's set-up and warm-up: a lower bound on the busy share of the phase
        cpu = tree_cpu_seconds(server_pid) - cpu0
        result["server_cpu_pct_of_one_core"] = round(100 * cpu / wall, 1)
        # every request the phase sent, warm-up included, was served within the measured CPU
        sent = result.get("sent_incl_warmup") or 0
        result["server_cpu_ms_per_request"] = round(1000 * cpu / sent, 3) if sent else None
    return result


def max_then_half(name: str, base: dict, args: argparse.Namespace, server_pid: int, webhook: bool) -> dict:
    seconds = args.seconds
    closed = dict(base, mode="closed", connections=args.connections, seconds=seconds, warmup=args.warmup)
    if webhook:
        closed["max_requests"] = int((seconds + args.warmup) * args.max_rate_cap)
    log(f"{name}: closed loop, {args.connections} connections, {seconds}s")
    mx = loadgen(closed, server_pid)
    log(f"{name}: max {mx['ok_rate']}/s ok (statuses {mx['statuses']}), p99 {mx['p99_ms']} ms")
    half = max(1.0, round(mx["ok_rate"] / 2, 1))
    opened = dict(base, mode="open", connections=args.connections, seconds=seconds, rate=half)
    if webhook:
        opened["max_requests"] = int(half * seconds * 1.05) + 100
        opened["customer_offset"] = closed["max_requests"]
    log(f"{name}: open loop at {half}/s, {seconds}s")
    op = loadgen(opened, server_pid)
    log(f"{name}: at half max {op['ok_rate']}/s ok, p50 {op['p50_ms']} ms, p99 {op['p99_ms']} ms")
    return {"max": mx, "half": op}


# ---------------------------------------------------------------------------------------------- db


async def create_db(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_db(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed_sessions(dsn: str, customers: int) -> None:
    """The customers' open sessions, as after their first message (steady state, not first contact)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO cs_sessions (id, channel, open_id, status, low_confidence_streak, created_at,"
            " updated_at, last_message_at) SELECT gen_random_uuid(), 'widget', 'bench-' || g, 'idle', 0,"
            " now(), now(), now() FROM generate_series(0, $1 - 1) g",
            customers,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def db_dsn(name: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def service_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_CS_")}
    env.update(extra)
    return env


def migrate(dsn: str, workdir: str) -> None:
    env = service_env(
        {
            "AI_CS_POSTGRES_ENABLED": "true",
            "AI_CS_POSTGRES_DSN": dsn + "?sslmode=disable",
            "AI_CS_LOG_LEVEL": "warning",
        }
    )
    out = subprocess.run(
        [PY, "-m", "ai_customer_service", "migrate"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"migrate failed: {out.stdout}{out.stderr}")


# ---------------------------------------------------------------------------------------------- phases


def phase_client_ceiling(args: argparse.Namespace, procs: list[Proc]) -> dict:
    port = free_port()
    p = Proc("trivial", [PY, str(HERE / "trivial_server.py"), str(port)])
    procs.append(p)
    wait_port(port, p)
    secs = min(5.0, args.seconds)
    log(f"client ceiling: closed loop against a raw responder, {secs}s")
    r = loadgen(
        {
            "port": port,
            "kind": "plain",
            "path": "/",
            "mode": "closed",
            "connections": args.connections,
            "seconds": secs,
            "warmup": 1,
        },
        p.target_pid,
    )
    p.stop()
    log(f"client ceiling: {r['ok_rate']}/s, client {r['client_us_per_req']} us CPU per request")
    return r


def phase_hello(args: argparse.Namespace, procs: list[Proc]) -> dict:
    port = free_port()
    p = Proc("hello", [PY, str(HERE / "hello_app.py"), str(port), str(args.http_workers)])
    procs.append(p)
    wait_http(f"http://127.0.0.1:{port}/ready", p)
    res = max_then_half("hello", {"port": port, "kind": "plain", "path": "/hello"}, args, p.target_pid, False)
    p.stop()
    return res


def phase_webhook(args: argparse.Namespace, procs: list[Proc], dbname: str, workdir: str) -> dict:
    dsn = db_dsn(dbname)
    migrate(dsn, workdir)
    asyncio.run(seed_sessions(dsn, args.customers))
    port = free_port()
    env = service_env(
        {
            "AI_CS_ADDR": f"127.0.0.1:{port}",
            "AI_CS_POSTGRES_ENABLED": "true",
            "AI_CS_POSTGRES_DSN": dsn + "?sslmode=disable",
            "AI_CS_WEBHOOK_SECRET": SECRET,
            "AI_CS_RUNTIME_ENV": "test",
            "AI_CS_LOG_LEVEL": args.log_level,
            "AI_CS_LOG_FORMAT": args.log_format,
            "AI_CS_RATE_LIMIT_MESSAGES": str(args.rate_limit),
            "AI_CS_DATA_DIR": str(Path(workdir) / "data"),
            "AI_CS_HTTP_WORKERS": str(args.http_workers),
        }
    )
    for item in args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    cmd = [PY, "-m", "ai_customer_service", "serve"]
    if args.profile:
        spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
        if not spy:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        cmd = [
            spy,
            "record",
            "--format",
            "raw",
            "--nonblocking",
            "--rate",
            "200",
            *(["--gil"] if args.profile_gil else []),
            *(["--native"] if args.profile_native else []),
            "-o",
            str(Path(args.profile).resolve()),
            "--",
            *cmd,
        ]
    p = Proc("server", cmd, env=env, cwd=workdir)
    procs.append(p)
    wait_http(f"http://127.0.0.1:{port}/actuator/health/ready", p)
    if args.profile:
        kids = children(p.proc.pid)
        if kids:
            p.target_pid = kids[0]
    base = {
        "port": port,
        "kind": "webhook",
        "path": WEBHOOK_PATH,
        "secret": SECRET,
        "customers": args.customers,
    }
    res = max_then_half("webhook", base, args, p.target_pid, True)
    p.stop()
    return res


def phase_pgbench(args: argparse.Namespace, dbname: str, workdir: str, script: str = "ingest.sql") -> dict:
    dsn = db_dsn(dbname)
    migrate(dsn, workdir)
    asyncio.run(seed_sessions(dsn, args.customers))
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    cmd = [
        pgbench,
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "postgres",
        "-n",
        "-c",
        str(args.pgbench_clients),
        "-j",
        "2",
        "-T",
        str(int(args.seconds)),
        "-D",
        f"customers={args.customers}",
        "-f",
        str(HERE / script),
        dbname,
    ]
    log("raw transaction: " + " ".join(cmd[1:]))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stdout}{out.stderr}")
    tps = float(re.search(r"tps = ([\d.]+) \(without", out.stdout).group(1))
    lat = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    log(f"raw transaction: {tps:.1f} tps")
    return {
        "command": "pgbench " + " ".join(cmd[1:]).replace(str(ROOT) + "/", ""),
        "tps": round(tps, 1),
        "latency_avg_ms": float(lat.group(1)) if lat else None,
        "transactions": int(done.group(1)) if done else None,
        "failed": int(failed.group(1)) if failed else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20, help="length of each timed phase (default 20)")
    ap.add_argument("--warmup", type=float, default=2, help="closed-loop warm-up, not recorded (default 2)")
    ap.add_argument("--connections", type=int, default=64, help="client connections (default 64)")
    ap.add_argument(
        "--customers",
        type=int,
        default=100_000,
        help="distinct open_ids / seeded sessions (default 100000: every message is its customer's first "
        "of the run, as in the pgbench script; with fewer, a customer's second message is a "
        "low-confidence handoff that opens a ticket, and the third is answered silently)",
    )
    ap.add_argument("--pgbench-clients", type=int, default=8)
    ap.add_argument(
        "--rate-limit", type=int, default=10, help="AI_CS_RATE_LIMIT_MESSAGES (service default 10)"
    )
    ap.add_argument("--log-level", default="warning", help="AI_CS_LOG_LEVEL of the service (default warning)")
    ap.add_argument(
        "--log-format",
        default="json",
        choices=["json", "text", "auto"],
        help="AI_CS_LOG_FORMAT of the service (default json, as in production)",
    )
    ap.add_argument(
        "--max-rate-cap",
        type=float,
        default=4000,
        help="pre-built webhook requests per second of closed loop (bounds the request count)",
    )
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service (e.g. AI_CS_POSTGRES_MAX_IDLE_CONNS=20)",
    )
    ap.add_argument(
        "--http-workers",
        type=int,
        default=1,
        help="server processes: AI_CS_HTTP_WORKERS for the service, as many for the hello world (default 1)",
    )
    ap.add_argument(
        "--no-raw-v2",
        action="store_true",
        help="skip the second pgbench phase (ingest_v2.sql: the service's statements since run 6)",
    )
    ap.add_argument("--only", choices=["webhook"], help="run only the webhook phase (e.g. with --profile)")
    ap.add_argument("--profile", help="run the service under py-spy record --format raw, output to this file")
    ap.add_argument(
        "--profile-gil",
        action="store_true",
        help="py-spy --gil: sample only while the server holds the GIL (its CPU time)",
    )
    ap.add_argument("--profile-native", action="store_true", help="py-spy --native: include C frames")
    ap.add_argument("--json-out", help="also write the JSON summary to this file")
    args = ap.parse_args()
    if args.seconds <= 0 or args.seconds > 300:
        ap.error("--seconds must be in (0, 300]")

    tag = uuid.uuid4().hex[:10]
    db_web, db_raw, db_raw2 = f"aics_bench_{tag}", f"aics_bench_{tag}_raw", f"aics_bench_{tag}_raw2"
    workdir = tempfile.mkdtemp(prefix="aics-bench-")
    procs: list[Proc] = []
    created: list[str] = []
    summary: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uptime_before": uptime(),
        "cpus": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json_out",)},
    }
    try:
        if args.only != "webhook":
            summary["client_ceiling"] = phase_client_ceiling(args, procs)
            summary["hello"] = phase_hello(args, procs)
        asyncio.run(create_db(db_web))
        created.append(db_web)
        summary["webhook"] = phase_webhook(args, procs, db_web, workdir)
        if args.only != "webhook":
            asyncio.run(create_db(db_raw))
            created.append(db_raw)
            summary["raw_transaction"] = phase_pgbench(args, db_raw, workdir)
            if not args.no_raw_v2:
                asyncio.run(create_db(db_raw2))
                created.append(db_raw2)
                summary["raw_transaction_v2"] = phase_pgbench(args, db_raw2, workdir, "ingest_v2.sql")
    finally:
        for p in procs:
            p.stop()
        for name in created:
            try:
                asyncio.run(drop_db(name))
            except Exception as exc:
                log(f"could not drop {name}: {exc}")
        shutil.rmtree(workdir, ignore_errors=True)
    summary["uptime_after"] = uptime()

    web = summary["webhook"]
    wmax = web["max"]["ok_rate"]
    result: dict = {
        "webhook_max_msg_s": wmax,
        "webhook_half_p50_ms": web["half"]["p50_ms"],
        "webhook_half_p99_ms": web["half"]["p99_ms"],
    }
    if "raw_transaction" in summary:
        raw = summary["raw_transaction"]["tps"]
        hello = summary["hello"]["max"]["ok_rate"]
        result.update(
            {
                "raw_transaction_tps": raw,
                "hello_max_req_s": hello,
                "hello_half_p50_ms": summary["hello"]["half"]["p50_ms"],
                "hello_half_p99_ms": summary["hello"]["half"]["p99_ms"],
                "client_ceiling_req_s": summary["client_ceiling"]["ok_rate"],
                "ratio_webhook_to_raw": round(wmax / raw, 3) if raw else None,
                "ratio_webhook_to_hello": round(wmax / hello, 3) if hello else None,
                "target_throughput_met": bool(raw and wmax >= 0.4 * raw),
                "target_throughput_abs_850_met": wmax >= 850,
            }
        )
    if "raw_transaction_v2" in summary:
        raw2 = summary["raw_transaction_v2"]["tps"]
        result["raw_transaction_v2_tps"] = raw2
        result["ratio_webhook_to_raw_v2"] = round(wmax / raw2, 3) if raw2 else None
        result["target_throughput_met_v2"] = bool(raw2 and wmax >= 0.4 * raw2)
    result["target_p99_met"] = web["half"]["p99_ms"] <= 25.0
    summary["result"] = result
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
