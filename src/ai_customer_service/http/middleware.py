"""The outermost ASGI middleware: request id, body-size limit, access log, metrics, last-resort 500.

Pure ASGI (no BaseHTTPMiddleware) so that streaming bodies are counted while they are read: a body
larger than ``AI_CS_MAX_BODY_BYTES`` is refused with 413 ``CS_REQ_4131`` as soon as the declared
length or the bytes read so far exceed it, without buffering the rest.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_customer_service.errors import REQ_TOO_LARGE, SYS_INTERNAL
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics

log = get_logger("ai_customer_service.access")
# the level check before the access line: structlog runs its processors (context, timestamp) before
# the standard library drops a record below the level
_access_logger = logging.getLogger("ai_customer_service.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # fits cs_audit_logs.request_id
REQUEST_ID_HEADER = b"x-request-id"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # labelled metric children per (method, route[, status]): ``labels()`` costs a lock and a
        # tuple check each time; routes are templates, so these stay small
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)

        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER],
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        received = 0
        limit = self.max_body_bytes

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # an HTTPException passes through FastAPI's body parsing unchanged (a plain
                    # error would become a 400); the error handler maps it to CS_REQ_4131
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                status = 413
                state["error_code"] = REQ_TOO_LARGE
                await _send_error(
                    send_wrapper, 413, REQ_TOO_LARGE, f"request body exceeds {limit} bytes", request_id
                )
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:  # last resort: never leak a traceback to the client
            log.error("unhandled error", exc_info=exc, path=scope.get("path"))
            state["error_code"] = SYS_INTERNAL
            if not response_started:
                await _send_error(send_wrapper, 500, SYS_INTERNAL, "internal server error", request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            counted = self._counted.get((method, route, status))
            if counted is None:
                counted = self._counted[(method, route, status)] = self.metrics.http_requests.labels(
                    method, route, str(status)
                )
            counted.inc()
            timed = self._timed.get((method, route))
            if timed is None:
                timed = self._timed[(method, route)] = self.metrics.http_latency.labels(method, route)
            timed.observe(elapsed)
            code = state.get("error_code")
            if code:
                self.metrics.http_errors.labels(code).inc()
            if code == REQ_TOO_LARGE and "/webhook" in str(scope.get("path", "")):
                # refused before the route ran: count and log it like the route's own rejections
                self.metrics.webhook_rejections.labels(code).inc()
                log.warning("webhook rejected", code=code, path=scope.get("path"), reason="body too large")
            if _access_logger.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    code=code,
                    client=(scope.get("client") or ("", 0))[0],
                )
            structlog.contextvars.unbind_contextvars("request_id")


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


async def _send_error(send: Send, status: int, code: str, message: str, request_id: str) -> None:
    error = {"error": {"code": code, "message": message, "request_id": request_id}}
    body = json.dumps(error, separators=(",", ":")).encode()  # as compact as the app's JSON
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
