"""Standard Webhooks signatures (https://www.standardwebhooks.com), offered on outbound callbacks.

``webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>``.
The key is the secret's bytes: for a secret written as ``whsec_<base64>`` (the Standard Webhooks
convention) the base64-decoded bytes, otherwise the UTF-8 bytes of the secret as configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

WHSEC_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    if secret.startswith(WHSEC_PREFIX):
        try:
            return base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass  # not valid base64: use the text as it is
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: str | int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 signature>``."""
    message = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, message_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True when any ``v1,`` signature in the space-separated header matches (constant time)."""
    expected = sign(secret, message_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in header.split())
