"""A real HTTP receiver for outbound callbacks: verifies both signatures and records every request.

Runs ``http.server`` in a thread (for in-process tests) or as its own process via
``python -m tests.support.receiver`` (the fault benchmark). ``behaviour(payload, nth)`` decides the
answer to the ``nth`` (1-based) delivery of an event id: an HTTP status, or ``"timeout"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ai_customer_service.security import standard_webhooks

Behaviour = Callable[[dict[str, Any], int], "int | str"]


def always_ok(payload: dict[str, Any], nth: int) -> int | str:
    return 200


@dataclass
class Received:
    payload: dict[str, Any]
    headers: dict[str, str]
    answer: int | str
    at: float
    peer: tuple[str, int] = ("", 0)  # the client's address: one per TCP connection


@dataclass
class Receiver:
    secret: str
    behaviour: Behaviour = always_ok
    timeout_sleep: float = 2.0
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counts: dict[str, int] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        ts = headers.get("x-cs-timestamp", "")
        expected = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-cs-signature", "")):
            return False
        if abs(time.time() - int(ts)) > 300:
            return False
        return standard_webhooks.verify(
            self.secret,
            headers.get("webhook-id", ""),
            headers.get("webhook-timestamp", ""),
            body,
            headers.get("webhook-signature", ""),
        )

    def handle(
        self, headers: dict[str, str], body: bytes, peer: tuple[str, int] = ("", 0)
    ) -> tuple[int, bytes]:
        if not self.verify(headers, body):
            with self._lock:
                self.bad_signatures += 1
            return 401, b'{"error":"bad signature"}'
        payload = json.loads(body)
        with self._lock:
            nth = self._counts.get(payload["id"], 0) + 1
            self._counts[payload["id"]] = nth
        answer = self.behaviour(payload, nth)
        with self._lock:
            self.received.append(Received(payload, headers, answer, time.time(), peer))
        if answer == "timeout":
            time.sleep(self.timeout_sleep)
            return 200, b"too late"
        assert isinstance(answer, int)
        return answer, json.dumps({"ok": 200 <= answer < 300, "nth": nth}).encode()

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like any production receiver
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK wait

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, out = receiver.handle(headers, body, self.client_address[:2])
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the worker gave up waiting (timeout case)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default listen backlog (5) drops bursts of connections

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/callbacks"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Receiver:
        """``with Receiver(secret=...) as r:`` starts it and always stops it (a fixture's body)."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connections(self) -> int:
        """How many TCP connections the requests came over."""
        with self._lock:
            return len({r.peer for r in self.received})

    def ids(self) -> list[str]:
        with self._lock:
            return [r.payload["id"] for r in self.received]

    def acknowledged(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if isinstance(r.answer, int) and 200 <= r.answer < 300]
