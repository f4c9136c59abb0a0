"""Verifying the HMAC signature of a raw request body (contract §5) as the HTTP layer sees it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from ai_customer_service.config import Settings
from ai_customer_service.errors import Forbidden
from ai_customer_service.security import replay, signing
from ai_customer_service.webhook.rejections import RejectionLog


def replay_key(signature: str) -> str:
    """The idempotency key of a signed request: the same signed bytes (same timestamp, same body) are
    the same message, so for a message without a ``message_id`` a replay within the skew window is a
    duplicate. Derived from the verified signature (normalised: the ``sha256=`` prefix is optional)."""
    return "sig:" + replay.digest(signature)[:48]


@dataclass(frozen=True)
class Verified:
    """A verified request: its :func:`replay_key`, and for a version-1 signature the binding to
    claim for its path (``None`` for version 2, whose signature covers the path)."""

    replay_key: str
    binding: replay.SignatureBinding | None


def verify_request(
    request: Request,
    body: bytes,
    *,
    secret: str | Sequence[str],
    settings: Settings,
    rejections: RejectionLog,
) -> Verified:
    """Raise 403 with ``CS_AUTH_4031..4034`` unless the request is signed with ``secret`` (or one
    of several: current and previous during a rotation)."""
    signature = request.headers.get(settings.webhook_signature_header)
    version = signing.parse_version(request.headers.get(settings.webhook_signature_version_header))
    path = request.url.path
    failure: signing.SignatureFailure | None
    if version is None:
        failure = signing.BAD_VERSION
    else:
        failure = signing.verify(
            secret,
            request.headers.get(settings.webhook_timestamp_header),
            signature,
            body,
            now=time.time(),
            max_skew_seconds=settings.webhook_max_skew_seconds,
            version=version,
            method=request.method,
            path=path,
        )
        if failure is None and version < settings.webhook_signature_min_version:
            failure = signing.OLD_VERSION
    if failure is not None:
        rejections.record(
            failure.code,
            request_id=str(getattr(request.state, "request_id", "")),
            path=path,
            reason=failure.message,
        )
        raise Forbidden(failure.message, failure.code)
    assert signature is not None  # verified above
    binding = None
    if version == 1:
        binding = replay.SignatureBinding(replay.digest(signature), f"{request.method.upper()} {path}")
    return Verified(replay_key(signature), binding)
