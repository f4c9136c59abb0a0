"""Parsing an inbound message body strictly (contract §5), with the contract's error codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ai_customer_service import safejson
from ai_customer_service.errors import REQ_CHANNEL, REQ_INVALID, REQ_REQUIRED, BadRequest

_FIELDS = ("message_id", "channel", "open_id", "user_id", "content", "content_type", "timestamp", "reply_to")
_MAX_LENGTHS = {
    "message_id": 128,
    "channel": 32,
    "open_id": 128,
    "user_id": 64,
    "content_type": 32,
    "reply_to": 128,
}


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    open_id: str
    content: str
    content_type: str
    message_id: str | None
    user_id: str | None
    sent_at: datetime | None
    reply_to: str | None
    truncated: bool
    original_length: int
    # without a message_id, the signed request itself is the idempotency key: an exact replay within
    # the signature's skew window is answered as a duplicate
    replay_key: str | None = None

    @property
    def dedup_key(self) -> str | None:
        return self.message_id or self.replay_key


def parse_inbound(
    raw: bytes,
    *,
    path_channel: str | None,
    channels: frozenset[str],
    max_content_chars: int,
    default_channel: str | None = None,
    replay_key: str | None = None,
) -> InboundMessage:
    """Validate the body; raises :class:`BadRequest` with ``CS_REQ_4001/4002/4008``. ``replay_key``
    (the verified signature's, see ``signature.replay_key``) deduplicates a message without a
    ``message_id``."""
    try:
        body = safejson.loads(raw)
    except safejson.JsonInputError as exc:
        raise BadRequest(f"request body {exc}", REQ_INVALID) from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", REQ_INVALID)
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field: {', '.join(unknown)}",
            REQ_INVALID,
            details=[{"field": name, "message": "unknown field"} for name in unknown],
        )
    values: dict[str, str | None] = {}
    for name in _FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(
                f"{name} must be a string",
                REQ_INVALID,
                details=[{"field": name, "message": "must be a string"}],
            )
        if isinstance(value, str) and not _storable(value):
            raise BadRequest(
                f"{name} holds characters that cannot be stored (NUL or unpaired surrogates)",
                REQ_INVALID,
                details=[{"field": name, "message": "invalid characters"}],
            )
        values[name] = value.strip() if isinstance(value, str) else None
        limit = _MAX_LENGTHS.get(name)
        if limit is not None and values[name] and len(values[name] or "") > limit:
            raise BadRequest(
                f"{name} is longer than {limit} characters",
                REQ_INVALID,
                details=[{"field": name, "message": f"at most {limit} characters"}],
            )

    channel = (path_channel or values["channel"] or default_channel or "").lower()
    open_id = values["open_id"] or ""
    content = values["content"] or ""
    missing = [n for n, v in (("channel", channel), ("open_id", open_id), ("content", content)) if not v]
    if missing:
        raise BadRequest(
            "channel, open_id and content are required",
            REQ_REQUIRED,
            details=[{"field": name, "message": "required"} for name in missing],
        )
    if channel not in channels:
        raise BadRequest(
            f"channel {channel!r} is not configured",
            REQ_CHANNEL,
            details=[{"field": "channel", "message": f"one of: {', '.join(sorted(channels))}"}],
        )

    sent_at = None
    if values["timestamp"]:
        sent_at = _parse_timestamp(values["timestamp"])

    original_length = len(content)
    truncated = original_length > max_content_chars
    if truncated:
        content = content[:max_content_chars]
    return InboundMessage(
        channel=channel,
        open_id=open_id,
        content=content,
        content_type=(values["content_type"] or "text").lower(),
        message_id=values["message_id"] or None,
        user_id=values["user_id"] or None,
        sent_at=sent_at,
        reply_to=values["reply_to"] or None,
        truncated=truncated,
        original_length=original_length,
        replay_key=replay_key,
    )


def _storable(value: str) -> bool:
    """Text both databases can store: valid UTF-8 (no lone surrogates) and no NUL."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(
            "timestamp must be RFC 3339",
            REQ_INVALID,
            details=[{"field": "timestamp", "message": "RFC 3339"}],
        ) from exc
    if parsed.tzinfo is None:
        raise BadRequest(
            "timestamp must carry a UTC offset (RFC 3339)",
            REQ_INVALID,
            details=[{"field": "timestamp", "message": "RFC 3339 with offset"}],
        )
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise BadRequest(
            "timestamp is out of range: it must lie between years 1 and 9999 in UTC",
            REQ_INVALID,
            details=[{"field": "timestamp", "message": "out of range"}],
        ) from exc


class WebhookResponse(BaseModel):
    """The answer to a processed (or duplicate) message."""

    model_config = ConfigDict(extra="forbid")

    received: bool = True
    session_id: str
    message_id: str = Field(description="id of the stored inbound message")
    reply: str
    intent: str
    confidence: float
    handoff: bool
    ticket_id: str = ""
    citations: list[dict[str, Any]] = Field(default_factory=list)
    duplicate: bool = False
