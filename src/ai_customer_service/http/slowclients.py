"""Cutting slow clients at the HTTP protocol layer (uvicorn has no header-read timeout).

A client that opens a connection and sends its request line and headers a byte at a time (slowloris),
or a body a byte at a time, held a socket and a file descriptor forever: with the open-files limit at
300, 320 such sockets made health checks and webhooks fail. uvicorn only times out *idle* keep-alive
connections. :func:`guarded_protocol` returns a subclass of uvicorn's httptools protocol that adds:

- a **header deadline**: armed when the connection is made (and, on a keep-alive connection, when the
  next request's first byte arrives), cancelled when the headers are complete. Past
  ``AI_CS_HTTP_HEADER_TIMEOUT_SECONDS`` the client gets ``408`` and the connection is closed.
- a **minimum body rate**: from the end of the headers, the body must arrive at
  ``AI_CS_HTTP_BODY_MIN_BYTES_PER_SECOND`` on average, after a grace of the header timeout; checked
  once a second. While the server itself has paused reading (the application has not consumed what
  it received), the clock does not run against the client. A slow body is closed (the application
  sees a disconnect and nothing is processed).

The check costs one timer per connection. Cut connections are counted and summarised in the log at
most every 10 seconds (``slow clients cut``), so a flood cannot flood the log.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ai_customer_service.logs import get_logger

log = get_logger(__name__)
_SUMMARY_EVERY = 10.0
_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _CutLog:
    """Counts of connections cut: the first is logged at once, later ones as one summary line at most
    every ``_SUMMARY_EVERY`` seconds (a timer logs what is left after a burst)."""

    def __init__(self) -> None:
        self.headers = 0
        self.body = 0
        self.logged_at = -_SUMMARY_EVERY
        self.scheduled: asyncio.TimerHandle | None = None

    def cut(self, phase: str, loop: asyncio.AbstractEventLoop) -> None:
        if phase == "headers":
            self.headers += 1
        else:
            self.body += 1
        wait = self.logged_at + _SUMMARY_EVERY - loop.time()
        if wait <= 0:
            self.flush(loop)
        elif self.scheduled is None:
            self.scheduled = loop.call_later(wait, self.flush, loop)

    def flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduled = None
        if self.headers or self.body:
            log.warning("slow clients cut", headers_too_slow=self.headers, body_too_slow=self.body)
            self.headers = self.body = 0
            self.logged_at = loop.time()


CUT_LOG = _CutLog()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a minimum body rate."""

    header_timeout: float = 5.0
    body_min_rate: int = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._body_started = 0.0
        self._body_paused = 0.0
        self._paused_since: float | None = None
        self._body_bytes = 0

    # --- the header deadline ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._arm(self.header_timeout, self._headers_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # the next request on a keep-alive connection: its own deadline
            self._in_headers = True
            self._arm(self.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel()
        super().on_headers_complete()
        if self.body_min_rate:
            self._body_started = self.loop.time()
            self._body_paused = 0.0
            self._paused_since = None
            self._body_bytes = 0
            self._arm(1.0, self._check_body_rate)

    def _headers_too_slow(self) -> None:
        self._guard = None
        if self.transport is None or self.transport.is_closing():
            return
        CUT_LOG.cut("headers", self.loop)
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    # --- the body rate ---------------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel()
        super().on_message_complete()

    def _check_body_rate(self) -> None:
        self._guard = None
        if self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow is not None and self.flow.read_paused:  # we stopped reading, not the client
            if self._paused_since is None:
                self._paused_since = now
        elif self._paused_since is not None:
            self._body_paused += now - self._paused_since
            self._paused_since = None
        if self._paused_since is None:
            elapsed = now - self._body_started - self._body_paused - self.header_timeout
            if elapsed > 0 and self._body_bytes < self.body_min_rate * elapsed:
                CUT_LOG.cut("body", self.loop)
                self.transport.close()
                return
        self._arm(1.0, self._check_body_rate)

    # --- bookkeeping -----------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._cancel()
        self._guard = self.loop.call_later(delay, callback)

    def _cancel(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, body_min_rate: int) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_min_rate": body_min_rate},
    )
