"""Verifying the HMAC signature of a raw request body (contract §5) as the HTTP layer sees it."""

from __future__ import annotations

import time

from fastapi import Request

from ai_customer_service.config import Settings
from ai_customer_service.errors import Forbidden
from ai_customer_service.security import signing
from ai_customer_service.webhook.rejections import RejectionLog


def verify_request(
    request: Request,
    body: bytes,
    *,
    secret: str,
    settings: Settings,
    rejections: RejectionLog,
) -> None:
    """Raise 403 with ``CS_AUTH_4031..4034`` unless the request is signed with ``secret``."""
    failure = signing.verify(
        secret,
        request.headers.get(settings.webhook_timestamp_header),
        request.headers.get(settings.webhook_signature_header),
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
