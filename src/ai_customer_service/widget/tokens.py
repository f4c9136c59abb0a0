"""Visitor tokens and identity verification for the widget (pure: no I/O).

A **visitor token** is ``cs1.<payload>.<signature>``: the payload is base64url JSON
``{"s": site_id, "v": visitor_id}`` (an anonymous visitor) or ``{"s": site_id, "u": user_id}`` (a
user the host site vouched for), the signature the base64url HMAC-SHA256 of ``cs1.<payload>`` under
the server-side key. It names exactly one customer of one site and nothing else; the browser keeps it
in localStorage. It carries no secret: knowing it lets one act as that visitor, as a cookie would.

**Identity verification** (like Intercom's): the host site's server computes
``user_hash = hex(HMAC-SHA256(site identity secret, user_id))`` and puts it in the page with the
user id; the widget sends both, and the service trusts the user id only if the hash matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

TOKEN_VERSION = "cs1"  # noqa: S105 - a format tag
MAX_TOKEN_LENGTH = 400


class TokenError(ValueError):
    """The token is malformed or its signature does not match."""


@dataclass(frozen=True)
class Visitor:
    site_id: str
    visitor_id: str | None = None
    user_id: str | None = None

    @property
    def kind(self) -> str:
        return "u" if self.user_id is not None else "v"

    @property
    def subject(self) -> str:
        return self.user_id if self.user_id is not None else (self.visitor_id or "")


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())


def issue(key: bytes, visitor: Visitor) -> str:
    body: dict[str, str] = {"s": visitor.site_id}
    if visitor.user_id is not None:
        body["u"] = visitor.user_id
    else:
        body["v"] = visitor.visitor_id or ""
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    signed = f"{TOKEN_VERSION}.{payload}"
    return f"{signed}.{_sign(key, signed)}"


def verify(key: bytes, token: str) -> Visitor:
    """The visitor a token names; :class:`TokenError` when it is malformed or forged."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise TokenError("malformed token")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, signed), parts[2]):
        raise TokenError("bad signature")
    try:
        body = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError) as exc:  # a signed token is always well-formed; be safe
        raise TokenError("malformed token") from exc
    if not isinstance(body, dict) or not isinstance(body.get("s"), str):
        raise TokenError("malformed token")
    user, visitor = body.get("u"), body.get("v")
    if isinstance(user, str) and user:
        return Visitor(site_id=body["s"], user_id=user)
    if isinstance(visitor, str) and visitor:
        return Visitor(site_id=body["s"], visitor_id=visitor)
    raise TokenError("malformed token")


def user_hash(identity_secret: str, user_id: str) -> str:
    """What the host site's server computes for its signed-in user (hex HMAC-SHA256)."""
    return hmac.new(identity_secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def user_hash_matches(identity_secret: str, user_id: str, given: str) -> bool:
    return hmac.compare_digest(user_hash(identity_secret, user_id), given.strip().lower())
