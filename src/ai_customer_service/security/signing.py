"""HMAC-SHA256 signatures over ``"<timestamp>.<raw body>"`` (contract §5), pure functions.

The same scheme signs inbound webhooks (verified here) and outbound callbacks (produced here).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp.body`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SignatureFailure:
    code: str
    message: str


MISSING = SignatureFailure("CS_AUTH_4031", "missing webhook signature")
BAD_TIMESTAMP = SignatureFailure("CS_AUTH_4032", "invalid webhook timestamp")
STALE = SignatureFailure("CS_AUTH_4033", "stale webhook request")
MISMATCH = SignatureFailure("CS_AUTH_4034", "invalid webhook signature")


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    max_skew_seconds: int,
) -> SignatureFailure | None:
    """Check a request's signature in the contract's order; ``None`` when it is valid."""
    timestamp = (timestamp_header or "").strip()
    signature = (signature_header or "").strip()
    if not timestamp or not signature:
        return MISSING
    if not _is_int(timestamp):
        return BAD_TIMESTAMP
    if abs(now - int(timestamp)) > max_skew_seconds:
        return STALE
    if signature[: len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        signature = signature[len(SIGNATURE_PREFIX) :]
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        return MISMATCH
    return None


def _is_int(value: str) -> bool:
    digits = value[1:] if value[:1] in "+-" else value
    return digits.isascii() and digits.isdigit() and len(digits) <= 12
