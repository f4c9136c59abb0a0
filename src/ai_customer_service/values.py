"""Checks of raw values shared by routers, services and queries (no web-framework imports).

- :func:`parse_uuid` / :func:`require_uuid`: a path's id as a UUID. A malformed id names no resource,
  so it is that resource's 404, exactly like a well-formed id that does not exist.
- :func:`unstorable_reason`: text both databases can store. PostgreSQL refuses NUL (``\\x00``) in
  text, and no driver can encode an unpaired surrogate (JSON allows ``"\\ud800"``).
- :func:`json_safe`: event data as plain JSON (UUIDs and enums as strings, timestamps as RFC 3339 UTC).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from ai_customer_service.errors import NotFound

NUL_MESSAGE = "must not contain NUL characters"
SURROGATE_MESSAGE = "must be valid Unicode text (no unpaired surrogates)"


def parse_uuid(raw: str) -> uuid.UUID | None:
    """``raw`` as a UUID, or None when it is not one (the caller answers its resource's 404)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def require_uuid(raw: str, resource: str, code: str) -> uuid.UUID:
    """``raw`` as a UUID; :class:`NotFound` (``"<resource> not found"``, ``code``) when it is not one."""
    parsed = parse_uuid(raw)
    if parsed is None:
        raise NotFound(f"{resource} not found", code)
    return parsed


def unstorable_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on both databases, or None when it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as plain JSON values; :class:`TypeError` for a value that has no JSON form."""
    result: dict[str, Any] = json.loads(json.dumps(data, default=_json_default))
    return result


def rfc3339(value: datetime) -> str:
    """The one wire format of an instant: RFC 3339 in UTC with ``Z``; a naive value is taken as UTC."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"event data is not JSON-serialisable: {type(value).__name__}")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks (numpy's default,
    ``statistics.quantiles(method="inclusive")``); ``sorted_values`` must be sorted and not empty."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)
