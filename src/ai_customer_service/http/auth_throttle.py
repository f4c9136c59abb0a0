"""Slowing down repeated failed authentication from one client (issue #12, item 3).

A failure is a response ``401`` (bad or missing bearer token, bad metrics token) or ``403`` with a
webhook-signature code (``CS_AUTH_403x``: missing, stale or wrong signature). After
``AI_CS_AUTH_FAILURE_LIMIT`` failures from one client within ``AI_CS_AUTH_FAILURE_WINDOW_SECONDS``,
that client's API requests (everything under the API prefix, and ``/metrics``) are answered ``429``
``CS_AUTH_4291`` with ``Retry-After`` for ``AI_CS_AUTH_FAILURE_BLOCK_SECONDS``, before any credential
is looked at. Health checks are never throttled.

The client is the TCP peer address (``X-Forwarded-For`` is never trusted, so it cannot be forged);
IPv6 clients are grouped by /64, the block one host usually holds. An attacker can therefore only
throttle the address it sends from: a gateway is locked out only if it shares its egress address
with the attacker (same NAT or proxy). List such gateways in ``AI_CS_AUTH_FAILURE_EXEMPT_NETWORKS``
(CIDRs); their failures are counted in metrics but never block.

The state is per process (each replica and each ``AI_CS_HTTP_WORKERS`` process counts on its own), so
with N processes a client gets at most N x limit failures per window — still bounded, and no
database write per failure. Blocks are audited: at most one ``cs_audit_logs`` row per flush interval
and process (``object_type=auth``, ``action=throttled``, the first clients and their failure
counts), so a flood cannot flood the audit table. Memory is bounded by :data:`MAX_CLIENTS`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_customer_service.audit import repository as audit
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import AUTH_SIGN_IN_BLOCKED, AUTH_SIGNATURE_PREFIX
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.values import rfc3339

log = get_logger(__name__)

MAX_CLIENTS = 10_000
"""Clients tracked at once; the least recently seen is forgotten first."""
AUDIT_SAMPLE = 20
"""Clients named in one audit row."""
THROTTLE_CODE = AUTH_SIGN_IN_BLOCKED


@dataclass
class _Client:
    window_start: float
    failures: int = 0
    blocked_until: float = 0.0


@dataclass
class AuthThrottle:
    """Failure counts and blocks per client; :meth:`flush` writes the pending audit row."""

    limit: int
    window_seconds: float
    block_seconds: float
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    metrics: Metrics | None = None
    clock: Any = time.monotonic
    clients: OrderedDict[str, _Client] = field(default_factory=OrderedDict)
    pending: dict[str, int] = field(default_factory=dict)  # blocked since the last flush: failures
    pending_total: int = 0

    @staticmethod
    def client_key(host: str) -> str:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host or "unknown"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return (
            str(address.ipv4_mapped or address)
            if isinstance(address, ipaddress.IPv6Address)
            else str(address)
        )

    def is_exempt(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.exempt)

    def retry_after(self, host: str) -> int:
        """Seconds this client must wait, or 0 when it is not blocked."""
        if not self.limit:
            return 0
        entry = self.clients.get(self.client_key(host))
        if entry is None:
            return 0
        remaining = entry.blocked_until - self.clock()
        return math.ceil(remaining) if remaining > 0 else 0

    def failed(self, host: str) -> None:
        """Count one failed authentication of ``host``; may start a block."""
        if self.metrics is not None:
            self.metrics.auth_failures.inc()
        if not self.limit or self.is_exempt(host):
            return
        key = self.client_key(host)
        now = self.clock()
        entry = self.clients.get(key)
        if entry is None or now - entry.window_start >= self.window_seconds:
            entry = _Client(window_start=now)
        self.clients[key] = entry
        self.clients.move_to_end(key)
        while len(self.clients) > MAX_CLIENTS:
            self.clients.popitem(last=False)
        entry.failures += 1
        if entry.failures >= self.limit and entry.blocked_until <= now:
            entry.blocked_until = now + self.block_seconds
            entry.window_start, failures, entry.failures = now, entry.failures, 0
            self.pending_total += 1
            if key in self.pending or len(self.pending) < AUDIT_SAMPLE:
                self.pending[key] = self.pending.get(key, 0) + failures
            if self.metrics is not None:
                self.metrics.auth_blocks.inc()
            log.warning(
                "client throttled after failed authentication",
                client=key,
                failures=failures,
                block_seconds=self.block_seconds,
            )

    async def flush(self, db: Database) -> int:
        """Write one audit row for the blocks since the last flush; returns how many rows (0 or 1)."""
        if not self.pending_total:
            return 0
        pending, total = self.pending, self.pending_total
        self.pending, self.pending_total = {}, 0
        try:
            async with db.transaction() as tx:
                audit.record(
                    tx,
                    object_type="auth",
                    object_id="inbound",
                    action="throttled",
                    actor_type="system",
                    code=THROTTLE_CODE,
                    details={
                        "blocks": total,
                        "clients": [{"client": k, "failures": v} for k, v in pending.items()],
                        "block_seconds": self.block_seconds,
                        "at": rfc3339(datetime.now(UTC)),
                    },
                )
        except Exception:
            self.pending_total += total  # kept for the next flush
            for key, count in pending.items():
                if key in self.pending or len(self.pending) < AUDIT_SAMPLE:
                    self.pending[key] = self.pending.get(key, 0) + count
            raise
        return 1


def _is_auth_failure(status: int, code: str | None) -> bool:
    return status == 401 or (status == 403 and bool(code) and str(code).startswith(AUTH_SIGNATURE_PREFIX))


class AuthThrottleMiddleware:
    """Answers 429 to a blocked client's API requests; counts failures from the responses."""

    def __init__(self, app: ASGIApp, *, throttle: AuthThrottle, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.throttle = throttle
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        host = (scope.get("client") or ("", 0))[0]
        state = scope.setdefault("state", {})
        wait = self.throttle.retry_after(host)
        if wait:
            if self.throttle.metrics is not None:
                self.throttle.metrics.auth_throttled.inc()
            state["error_code"] = THROTTLE_CODE
            await _send_429(send, wait, str(state.get("request_id", "")))
            return
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if _is_auth_failure(status, state.get("error_code")):
            self.throttle.failed(host)


async def _send_429(send: Send, retry_after: int, request_id: str) -> None:
    error = {
        "code": THROTTLE_CODE,
        "message": f"too many failed authentication attempts from this client; retry in {retry_after} s",
        "request_id": request_id,
    }
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
