"""One signed HTTP delivery of one claimed event. No database here: the worker records the result.

The body is the event as the receiver sees it (no internal bookkeeping); it is signed twice with the
destination's callback secret: ``X-CS-Timestamp`` / ``X-CS-Signature`` (hex HMAC-SHA256 of
``timestamp.body``, the inbound webhook scheme) and Standard Webhooks ``webhook-id`` /
``webhook-timestamp`` / ``webhook-signature``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ai_customer_service import __version__
from ai_customer_service.config import Settings
from ai_customer_service.outbox.events import CHANNEL_DESTINATION_PREFIX
from ai_customer_service.security import signing, standard_webhooks
from ai_customer_service.values import rfc3339

EXCERPT_BYTES = 2048


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    secret: str
    timeout_seconds: float
    max_retries: int
    platform: str | None


def resolve_destination(settings: Settings, name: str) -> Destination | None:
    """The callback target of a destination name, or ``None`` when it is not configured (any more)."""
    if name.startswith(CHANNEL_DESTINATION_PREFIX):
        callback = settings.channel_callbacks.get(name[len(CHANNEL_DESTINATION_PREFIX) :])
        if callback is None:
            return None
        return Destination(
            name=name,
            url=callback.callback_url,
            secret=callback.callback_secret,
            timeout_seconds=callback.callback_timeout_ms / 1000,
            max_retries=callback.callback_max_retries,
            platform=None,
        )
    profile = {p.name: p for p in settings.enabled_platforms}.get(name)
    if profile is None or not profile.callback_base_url or not profile.callback_secret:
        return None
    return Destination(
        name=name,
        url=profile.callback_base_url,
        secret=profile.callback_secret,
        timeout_seconds=profile.callback_timeout_ms / 1000,
        max_retries=profile.callback_max_retries,
        platform=profile.name,
    )


def known_destinations(settings: Settings) -> list[str]:
    """Every destination this process can deliver to: enabled platforms with a callback URL and
    secret, and the channels with a callback subscription. A worker claims nothing else."""
    names = [p.name for p in settings.enabled_platforms if p.callback_base_url and p.callback_secret]
    names += [f"{CHANNEL_DESTINATION_PREFIX}{name}" for name in settings.channel_callbacks]
    return sorted(names)


@dataclass(frozen=True)
class ClaimedEvent:
    """A snapshot of a claimed row: everything needed to deliver it and record the result."""

    seq: int
    id: uuid.UUID
    destination: str
    type: str
    session_id: uuid.UUID | None
    ticket_id: uuid.UUID | None
    source_message_id: str | None
    data: dict[str, Any]
    created_at: datetime
    attempt: int  # 1-based, within the current round
    round: int  # the event's replay count
    lease_expires_at: datetime | None = None  # when this worker's claim on it runs out


def payload(event: ClaimedEvent, platform: str | None) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": rfc3339(event.created_at),
        "platform": platform,
        "session_id": None if event.session_id is None else str(event.session_id),
        "ticket_id": None if event.ticket_id is None else str(event.ticket_id),
        "source_message_id": event.source_message_id,
        "attempt": event.attempt,
        "data": event.data,
    }


def signed_request(event: ClaimedEvent, destination: Destination, now: float) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        payload(event, destination.platform), separators=(",", ":"), ensure_ascii=False
    ).encode()
    timestamp = str(int(now))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"ai-customer-service/{__version__}",
        "X-CS-Timestamp": timestamp,
        "X-CS-Signature": signing.sign(destination.secret, timestamp, body),
        "X-CS-Event-Type": event.type,
        "webhook-id": str(event.id),
        "webhook-timestamp": timestamp,
        "webhook-signature": standard_webhooks.sign(destination.secret, str(event.id), timestamp, body),
    }
    return body, headers


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None
    error: str | None  # exception class name, never its message (it may carry the URL)
    duration_ms: float
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def deliver(
    client: httpx.AsyncClient, event: ClaimedEvent, destination: Destination, *, now: float
) -> DeliveryResult:
    """POST the event; never raises for HTTP or network trouble (that is a failed attempt)."""
    body, headers = signed_request(event, destination, now)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(destination.timeout_seconds):
            return await _post(client, destination, body, headers, started)
    except TimeoutError:
        return DeliveryResult(None, "Timeout", _ms(started), None)


async def _post(
    client: httpx.AsyncClient, destination: Destination, body: bytes, headers: dict[str, str], started: float
) -> DeliveryResult:
    try:
        request = client.build_request(
            "POST",
            destination.url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(destination.timeout_seconds),
        )
        response = await client.send(request, stream=True)
        try:
            excerpt = bytearray()
            async for chunk in response.aiter_raw():
                excerpt.extend(chunk)
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            await response.aclose()
        text = bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", errors="replace")
        return DeliveryResult(response.status_code, None, _ms(started), text)
    except httpx.HTTPError as exc:
        return DeliveryResult(None, type(exc).__name__, _ms(started), None)
    except OSError as exc:
        return DeliveryResult(None, type(exc).__name__, _ms(started), None)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
