"""``/metrics`` on its own address (``AI_CS_METRICS_ADDR``), away from the public port.

A deliberately tiny HTTP/1.1 responder on an asyncio server: one ``GET /metrics`` (or ``HEAD``) per
connection, ``Connection: close``, the request head read within the slow-client header timeout and at
most 16 KiB. The scrape is the same text the main port would serve (every worker process's values
with ``AI_CS_HTTP_WORKERS`` > 1); ``AI_CS_METRICS_TOKEN``, when set, is required here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST

from ai_customer_service.errors import AUTH_REQUIRED, HTTP_METHOD_NOT_ALLOWED, HTTP_NOT_FOUND
from ai_customer_service.health.router import metrics_token_ok
from ai_customer_service.logs import get_logger

log = get_logger(__name__)
_HEAD_LIMIT = 16 * 1024
_REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


def _response(status: int, body: bytes, content_type: str, head_only: bool, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    ).encode("latin-1")
    return head if head_only else head + body


def _error(status: int, code: str, message: str, head_only: bool, extra: str = "") -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "request_id": ""}}).encode()
    return _response(status, body, "application/json", head_only, extra)


async def start_metrics_listener(
    sock: socket.socket, *, token: str, exposition: Callable[[], bytes], header_timeout: float
) -> asyncio.Server:
    """Serve ``/metrics`` on the bound ``sock``; the caller closes the returned server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), header_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target = [*lines[0].split(" "), "", ""][:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            head_only = method == "HEAD"
            if target.split("?", 1)[0] != "/metrics":
                answer = _error(404, HTTP_NOT_FOUND, "resource not found", head_only)
            elif method not in ("GET", "HEAD"):
                answer = _error(
                    405, HTTP_METHOD_NOT_ALLOWED, "method not allowed", head_only, "allow: GET, HEAD\r\n"
                )
            elif not metrics_token_ok(token, headers.get("authorization")):
                answer = _error(
                    401,
                    AUTH_REQUIRED,
                    "metrics require Authorization: Bearer <AI_CS_METRICS_TOKEN>",
                    head_only,
                    "www-authenticate: Bearer\r\n",
                )
            else:
                answer = _response(200, exposition(), CONTENT_TYPE_LATEST, head_only)
            writer.write(answer)
            await writer.drain()
        except Exception as exc:  # never let one scrape take the listener down
            log.warning("metrics scrape failed", error=type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, sock=sock, limit=_HEAD_LIMIT)
