"""Building signed webhook requests the way a channel gateway does."""

from __future__ import annotations

import json
import time
from typing import Any

from ai_customer_service.security.signing import sign

WEBHOOK = "/api/v1/customer-service/webhook"


def signed(
    body: dict[str, Any] | bytes, secret: str, *, ts: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return raw, {
        "Content-Type": "application/json",
        "X-CS-Timestamp": stamp,
        "X-CS-Signature": sign(secret, stamp, raw),
    }


def message(
    content: str, *, open_id: str = "cust-1", message_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"channel": "widget", "open_id": open_id, "content": content}
    if message_id is not None:
        body["message_id"] = message_id
    body.update(extra)
    return body
