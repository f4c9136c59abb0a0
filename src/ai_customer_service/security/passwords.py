"""Passwords of people who sign in to the console: argon2id hashes (pure, CPU-bound).

argon2-cffi's defaults are the RFC 9106 "low memory" profile (argon2id, t=3, m=64 MiB, p=4). A hash
takes tens of milliseconds and 64 MiB, so callers run it in a worker thread, never on the event loop.
Passwords are never logged or stored in the clear; only the encoded hash (which carries its own
parameters and salt) is stored.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 256  # bounds the work an attacker can ask for per attempt

_HASHER = PasswordHasher()
# verified against when the user name is unknown, so an unknown name costs the same time as a known one
_DUMMY_HASH = _HASHER.hash("not-a-real-password-0f1e2d3c")


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or ``None`` when it can."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    if "\x00" in password:
        return "password must not contain NUL characters"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """True when ``password`` matches ``encoded``; a missing hash still spends the same work."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(encoded or _DUMMY_HASH, password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
