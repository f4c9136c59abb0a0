"""HMAC-SHA256 signatures over ``"<timestamp>.<raw body>"`` (contract §5), pure functions.

The same scheme signs inbound webhooks (verified here) and outbound callbacks (produced here).

Version 2 (opt-in per request, ``X-CS-Signature-Version: 2``) signs
``"<timestamp>.<METHOD>.<path>.<raw body>"``, so the signed bytes are bound to where they were sent;
version 1 requests are bound to their first path by the server instead (``cs_signature_uses``).
During a secret rotation two secrets are accepted (current, then previous).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from ai_customer_service.errors import (
    AUTH_SIGNATURE_INVALID,
    AUTH_SIGNATURE_MISSING,
    AUTH_SIGNATURE_REUSED,
    AUTH_STALE_REQUEST,
    AUTH_TIMESTAMP_INVALID,
)

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp.body`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_v2(secret: str, timestamp: str | int, method: str, path: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp.METHOD.path.body`` (signature version 2); ``path``
    is the request path as sent, without the query string (``/api/v1/customer-service/webhook``)."""
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_version(header: str | None) -> int | None:
    """The signature version a request declares: 1 without the header, else 1 or 2; ``None`` for
    anything else (refused as a mismatch)."""
    value = (header or "").strip()
    if not value:
        return 1
    return int(value) if value in ("1", "2") else None


@dataclass(frozen=True)
class SignatureFailure:
    code: str
    message: str


MISSING = SignatureFailure(AUTH_SIGNATURE_MISSING, "missing webhook signature")
BAD_TIMESTAMP = SignatureFailure(AUTH_TIMESTAMP_INVALID, "invalid webhook timestamp")
STALE = SignatureFailure(AUTH_STALE_REQUEST, "stale webhook request")
MISMATCH = SignatureFailure(AUTH_SIGNATURE_INVALID, "invalid webhook signature")
BAD_VERSION = SignatureFailure(AUTH_SIGNATURE_INVALID, "unsupported webhook signature version (use 1 or 2)")
OLD_VERSION = SignatureFailure(
    AUTH_SIGNATURE_INVALID, "webhook signature version 1 is not accepted here: sign with version 2"
)
# the same v1-signed bytes already accepted on another path (see ai_customer_service.security.replay)
OTHER_PATH = SignatureFailure(
    AUTH_SIGNATURE_REUSED,
    "this signed request was already used on another path; sign each request for its own path "
    "(a retry must go to the same path)",
)


def verify(
    secret: str | Sequence[str],
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    max_skew_seconds: int,
    version: int = 1,
    method: str = "POST",
    path: str = "",
) -> SignatureFailure | None:
    """Check a request's signature in the contract's order; ``None`` when it is valid.

    ``secret`` may be several (current and previous during a rotation; empty ones are ignored): a
    signature made with any of them is valid. ``version`` 2 also covers ``method`` and ``path``."""
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
    secrets = [secret] if isinstance(secret, str) else [s for s in secret if s]
    given = signature.lower().encode()
    matched = False
    for key in secrets:  # every secret is tried (no early exit), each in constant time
        expected = sign(key, timestamp, body) if version == 1 else sign_v2(key, timestamp, method, path, body)
        matched |= hmac.compare_digest(expected.encode(), given)
    return None if matched else MISMATCH


def _is_int(value: str) -> bool:
    digits = value[1:] if value[:1] in "+-" else value
    return digits.isascii() and digits.isdigit() and len(digits) <= 12
