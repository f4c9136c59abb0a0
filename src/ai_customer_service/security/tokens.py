"""Back-office API tokens: generation and hashing (pure).

A token is ``cst_`` followed by 43 URL-safe random characters (256 bits). Only its SHA-256 hex digest
is stored, plus a short display prefix so humans can tell tokens apart in listings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "cst_"  # noqa: S105 - a recognisable prefix, not a secret
DISPLAY_PREFIX_LENGTH = 12


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_LENGTH]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (false when ``expected`` is empty)."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
