"""HTTP/1.1 keep-alive load generator: closed loop (max rate) or open loop (fixed rate).

Runs in its own process (started by ``run.py``), reads one JSON job from stdin, prints one JSON
result on stdout. Every request is built (and, for the webhook, signed) *before* the timed phase;
the timed loop only writes pre-built bytes and parses the status line and Content-Length of the
response, on uvloop with raw ``asyncio.Protocol`` connections, so the client's cost per request is
a few microseconds. Only ever connects to 127.0.0.1.

Job fields: ``port``, ``mode`` (``closed``/``open``), ``connections``, ``seconds``, ``rate`` (open
loop), ``warmup`` seconds (closed loop, not recorded), ``kind`` (``webhook``/``plain``), ``path``,
and for the webhook ``secret``, ``customers``, ``customer_offset``, ``max_requests``.

Open-loop latency is measured from the *intended* send time of each request (no coordinated
omission): if all connections are busy, the request waits in a queue and that wait is counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable

HOST = "127.0.0.1"

CONTENTS = (
    "How do I reset my API key?",
    "What is my quota for this month?",
    "Where can I download last month's invoice?",
    "My account login page is slow today",
    "请问怎么查看账单？",
    "Can I change the email address on my account?",
)


def build_webhook(job: dict, count: int) -> list[bytes]:
    """``count`` signed, unique webhook requests, round-robin over ``customers`` open_ids."""
    secret = job["secret"].encode()
    customers = job["customers"]
    offset = job.get("customer_offset", 0)
    run = uuid.uuid4().hex[:10]
    stamp = str(int(time.time())).encode()
    path = job.get("path", "/api/v1/customer-service/webhook")
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "channel": "widget",
                "open_id": f"bench-{(offset + i) % customers}",
                "message_id": f"{run}-{i}",
                "content": CONTENTS[i % len(CONTENTS)],
            },
            ensure_ascii=False,
        ).encode()
        sig = hmac.new(secret, stamp + b"." + body, hashlib.sha256).hexdigest()
        out.append(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-CS-Timestamp: %s\r\nX-CS-Signature: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), stamp, sig.encode(), len(body), body)
        )
    return out


def build_plain(job: dict) -> list[bytes]:
    body = b'{"channel":"widget","open_id":"bench-0","content":"How do I reset my API key?"}'
    path = job.get("path", "/hello").encode()
    return [
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path, len(body), body)
    ]


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``on_done(conn, status, t_start)`` after each full response."""

    def __init__(self, on_done: Callable[[Conn, int, float], None]) -> None:
        self.on_done = on_done
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.need = -1
        self.status = 0
        self.t0 = 0.0
        self.ready = asyncio.get_running_loop().create_future()
        self.lost = False
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def send(self, data: bytes, t0: float) -> None:
        self.t0 = t0
        self.busy = True
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end]
                self.status = int(head[9:12])
                lower = head.lower()
                i = lower.find(b"content-length:")
                length = 0
                if i >= 0:
                    j = head.find(b"\r\n", i)
                    length = int(head[i + 15 : j if j > 0 else len(head)])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            self.buf = self.buf[self.need :]
            self.need = -1
            self.busy = False
            self.on_done(self, self.status, self.t0)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def run(job: dict) -> dict:
    loop = asyncio.get_running_loop()
    seconds = float(job["seconds"])
    warmup = float(job.get("warmup", 0))
    nconn = int(job["connections"])
    mode = job["mode"]
    rate = float(job.get("rate", 0))
    if job["kind"] == "webhook":
        expected = job.get("max_requests", 100_000)
        reqs = build_webhook(job, expected)
        unique = True
    else:
        reqs = build_plain(job)
        unique = False
    total_reqs = len(reqs)

    lat: list[float] = []
    sent_at: list[float] = []  # intended start of each recorded request (for the per-second timeline)
    statuses: dict[int, int] = {}
    state = {"next": 0, "recording": False, "stop": False, "sent": 0, "exhausted": False}
    idle: deque[Conn] = deque()
    backlog: deque[float] = deque()  # intended start times (open loop)

    def next_request() -> bytes | None:
        i = state["next"]
        if unique:
            if i >= total_reqs:
                state["exhausted"] = True
                return None
            state["next"] = i + 1
            return reqs[i]
        return reqs[0]

    def dispatch(conn: Conn, t0: float) -> bool:
        data = next_request()
        if data is None:
            return False
        state["sent"] += 1
        conn.send(data, t0)
        return True

    def on_done(conn: Conn, status: int, t0: float) -> None:
        now = time.perf_counter()
        if state["recording"] and t0 >= state["t_begin"]:
            lat.append(now - t0)
            sent_at.append(t0)
            statuses[status] = statuses.get(status, 0) + 1
        if state["stop"]:
            return
        if mode == "closed":
            dispatch(conn, now)
        elif backlog:
            dispatch(conn, backlog.popleft())
        else:
            idle.append(conn)

    conns = []
    for _ in range(nconn):
        _, proto = await loop.create_connection(lambda: Conn(on_done), HOST, job["port"])
        conns.append(proto)

    cpu0 = os.times()
    if mode == "closed":
        state["t_begin"] = float("inf")
        for c in conns:
            dispatch(c, time.perf_counter())
        if warmup:
            await asyncio.sleep(warmup)
        state["t_begin"] = time.perf_counter()
        state["recording"] = True
        cpu0 = os.times()
        await asyncio.sleep(seconds)
        state["stop"] = True
        t_end = time.perf_counter()
        # let in-flight requests finish before closing (a disconnect mid-request is not what we
        # measure, and it makes the server log an error for each)
        drain_until = time.perf_counter() + 15.0
        while any(c.busy for c in conns) and time.perf_counter() < drain_until:
            await asyncio.sleep(0.01)
    else:
        idle.extend(conns)
        interval = 1.0 / rate
        t_begin = time.perf_counter()
        state["t_begin"] = t_begin
        state["recording"] = True
        n = 0
        deadline = t_begin + seconds
        while True:
            now = time.perf_counter()
            if now >= deadline or state["exhausted"]:
                break
            due = t_begin + n * interval
            while due <= now and due < deadline:
                if idle:
                    if not dispatch(idle.popleft(), due):
                        break
                else:
                    backlog.append(due)
                n += 1
                due = t_begin + n * interval
            # dispatch in ticks of at least 1 ms: keeps the client's CPU low at high rates (latency
            # is measured from each request's intended time, so the tick does not hide queueing)
            await asyncio.sleep(max(0.001, min(due, deadline) - time.perf_counter()))
        state["stop_sending"] = True
        t_end = time.perf_counter()
        # let in-flight requests finish (bounded), then stop
        drain_until = time.perf_counter() + 5.0
        while (len(idle) < nconn or backlog) and time.perf_counter() < drain_until:
            await asyncio.sleep(0.01)
        state["stop"] = True
        # requests still queued or in flight were never answered: count them as failures (-1)
        unanswered = len(backlog) + (nconn - len(idle))
        if unanswered:
            statuses[-1] = statuses.get(-1, 0) + unanswered
    cpu1 = os.times()
    elapsed = t_end - state["t_begin"]
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    # per second of the phase: requests and the slowest latency (finds periodic stalls)
    per_second: dict[int, list[float]] = {}
    for t0, latency in zip(sent_at, lat, strict=True):
        per_second.setdefault(int(t0 - state["t_begin"]), []).append(latency)
    timeline = [
        {"s": sec, "n": len(v), "max_ms": round(max(v) * 1000, 1)} for sec, v in sorted(per_second.items())
    ]
    lat.sort()
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    done = len(lat)
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "mode": mode,
        "connections": nconn,
        "target_rate": rate if mode == "open" else None,
        "seconds": round(elapsed, 3),
        "completed": done,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "rate": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        "ok_rate": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p90_ms": round(percentile(lat, 90) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "max_ms": round((lat[-1] if lat else 0) * 1000, 2),
        "client_cpu_s": round(cpu, 2),
        "client_cpu_pct": round(100 * cpu / elapsed, 1) if elapsed > 0 else 0.0,
        "client_us_per_req": round(1e6 * cpu / done, 1) if done else None,
        "sent_incl_warmup": state["sent"],
        "exhausted_prebuilt_requests": state["exhausted"],
        "timeline": timeline,
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(run(job))
    except ImportError:  # pragma: no cover
        result = asyncio.run(run(job))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
