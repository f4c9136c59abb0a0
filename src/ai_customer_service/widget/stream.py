"""The widget's live stream (SSE) of one session, on the live-event hub, and the typing indicators.

The stream replays the events after ``Last-Event-ID`` from the table and then follows the hub, so a
dropped connection loses and repeats nothing, on any replica. It first sends ``event: ready`` (the
widget re-reads the history then, closing the gap between its first read and the subscription), and
``event: reset`` when the hub could not replay everything (the widget re-reads the history too).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from ai_customer_service.errors import REQ_INVALID, BadRequest
from ai_customer_service.live import RESET, LiveHub, StreamClosed
from ai_customer_service.values import rfc3339
from ai_customer_service.widget.service import TYPING, visitor_event

KEEP_ALIVE_SECONDS = 15.0
RETRY_MS = 2000
TYPING_MIN_INTERVAL_SECONDS = 3.0
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def parse_last_event_id(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise BadRequest("Last-Event-ID must be an event id from this stream", REQ_INVALID) from exc
    if value < 0:
        raise BadRequest("Last-Event-ID must be an event id from this stream", REQ_INVALID)
    return value


def _frame(name: str, data: dict[str, Any], seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def session_stream(
    request: Request, hub: LiveHub, session_id: uuid.UUID, after: int | None
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async with hub.subscribe(session_id=session_id, after_seq=after) as sub:
            yield f"retry: {RETRY_MS}\n" + _frame("ready", {"session_id": str(session_id)})
            while not await request.is_disconnected():
                try:
                    event = await sub.next(timeout=KEEP_ALIVE_SECONDS)
                except StreamClosed:
                    return  # the client reconnects with Last-Event-ID
                if event is None:
                    yield ": keep-alive\n\n"
                    continue
                if event.type == RESET:
                    yield _frame("reset", {}, event.seq)
                    continue
                shown = visitor_event(event.type, event.data, rfc3339(event.created_at))
                if shown is None:
                    continue
                name, data = shown
                if name == "message":
                    data["session_id"] = str(session_id)
                yield _frame(name, data, event.seq)

    return StreamingResponse(body(), media_type="text/event-stream", headers=_SSE_HEADERS)


class TypingThrottle:
    """At most one typing event per session and author every few seconds, per process: a visitor
    holding a key down cannot turn into a flood of database writes."""

    def __init__(self, interval: float = TYPING_MIN_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: dict[tuple[uuid.UUID, str, bool], float] = {}

    def allow(self, session_id: uuid.UUID, author: str, active: bool) -> bool:
        now = time.monotonic()
        if len(self._last) > 10_000:
            self._last = {k: v for k, v in self._last.items() if now - v < self.interval}
        key = (session_id, author, active)
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True


async def typing(
    hub: LiveHub,
    throttle: TypingThrottle,
    session_id: uuid.UUID,
    *,
    author: str,
    active: bool,
    name: str | None = None,
) -> bool:
    """Broadcast a typing indicator to the session's streams on every replica; False when throttled."""
    if not throttle.allow(session_id, author, active):
        return False
    data: dict[str, Any] = {"author": author, "active": active}
    if name:
        data["name"] = name
    await hub.broadcast(type=TYPING, session_id=session_id, data=data)
    return True
