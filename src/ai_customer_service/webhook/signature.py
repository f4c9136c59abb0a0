"""Verifying the HMAC signature of a raw request body (contract §5) as the HTTP layer sees it."""

from __future__ import annotations

import hashlib
import time

from fastapi import Request

from ai_customer_service.config import Settings
from ai_customer_service.errors import Forbidden
from ai_customer_service.security import signing
from ai_customer_service.webhook.rejections import RejectionLog


def replay_key(signature: str) -> str:
    """The idempotency key of a signed request: the same signed bytes (same timestamp, same body) are
    the same message, so for a message without a ``message_id`` a replay within the skew window is a
    duplicate. Derived from the verified signature (normalised: the ``sha256=`` prefix is optional)."""
    normalised = signature.strip().lower().removeprefix("sha256=")
    return "sig:" + hashlib.sha256(normalised.encode()).hexdigest()[:48]


def verify_request(
    request: Request,
    body: bytes,
    *,
    secret: str,
    settings: Settings,
    rejections: RejectionLog,
) -> str:
    """Raise 403 with ``CS_AUTH_4031..4034`` unless the request is signed with ``secret``; return the
    request's :func:`replay_key`."""
    signature = request.headers.get(settings.webhook_signature_header)
    failure = signing.verify(
        secret,
        request.headers.get(settings.webhook_timestamp_header),
        signature,
        body,
        now=time.time(),
        max_skew_seconds=settings.webhook_max_skew_seconds,
    )
    if failure is not None:
        rejections.record(
            failure.code,
            request_id=str(getattr(request.state, "request_id", "")),
            path=request.url.path,
            reason=failure.message,
        )
        raise Forbidden(failure.message, failure.code)
    assert signature is not None  # verified above
    return replay_key(signature)
