"""The request deadline: a request not answered within ``AI_CS_REQUEST_TIMEOUT_SECONDS`` is answered
503 ``CS_SYS_5031`` with ``Retry-After``, and its handler is cancelled.

Cancelling the handler rolls its unit of work back: the transaction never reaches its COMMIT, and
SQLAlchemy drops (rather than waits on) a connection whose statement was interrupted, so a stalled
database cannot hold the answer. The rare request cancelled while its COMMIT is in flight is the
documented "connection lost during the commit" case: retried with the same ``message_id``, it is
answered from the stored response (exactly-once holds).

Pure ASGI, placed inside ``RequestContextMiddleware`` so the access log and metrics see the 503.
A response that has already started (headers sent) is left to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_customer_service.errors import SYS_UNAVAILABLE
from ai_customer_service.http.errors import UNAVAILABLE_RETRY_AFTER
from ai_customer_service.logs import get_logger

log = get_logger(__name__)

DEADLINE_CODE = SYS_UNAVAILABLE
# how long a cancelled handler may take to unwind before the 503 goes out anyway (its cleanup then
# finishes in the background)
CANCEL_GRACE_SECONDS = 0.5


class RequestDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False
        expired = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if expired:
                return  # the deadline's answer went out: a late one is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.seconds)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done or started:
            await task  # finished (or already answering): its result or error as usual
            return
        expired = True
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
        if not task.done():
            task.add_done_callback(_consume)
        state = scope.setdefault("state", {})
        state["error_code"] = DEADLINE_CODE
        log.warning("request deadline exceeded", path=scope.get("path"), deadline_seconds=self.seconds)
        await _deadline_answer(send, str(state.get("request_id", "")))


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("cancelled request ended with an error", error=type(task.exception()).__name__)


async def _deadline_answer(send: Send, request_id: str) -> None:
    error = {
        "error": {
            "code": DEADLINE_CODE,
            "message": "the request did not complete in time (storage slow or unavailable); nothing was "
            "changed, retry later",
            "request_id": request_id,
        }
    }
    body = json.dumps(error, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", UNAVAILABLE_RETRY_AFTER.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
