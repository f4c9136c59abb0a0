"""The documented error tree. Every error the API returns is one of these, with its ``CS_*`` code.

::

    ServiceError                      base; carries code, HTTP status, safe message, details
    ├── BadRequest          400       CS_REQ_4001..4010, CS_REQ_4004 ..., CS_TKT_4003 (agent_id not active),
    │                                 CS_WGT_4001 (widget message too long)
    ├── PayloadTooLarge     413       CS_REQ_4131
    ├── Unauthenticated     401       CS_AUTH_4011 (with WWW-Authenticate: Bearer), CS_AUTH_4012 (console
    │                                 sign-in: wrong user name or password), CS_WGT_4011 (widget visitor
    │                                 token missing)
    ├── Forbidden           403       CS_AUTH_4001, CS_AUTH_4031..4034 (webhook signature), CS_AUTH_4035
    │                                 (signed request re-sent to another path), CS_AUTH_4036
    │                                 (console form without its CSRF token), CS_WGT_4031..4035 (widget:
    │                                 revoked site, origin, visitor token, identity)
    ├── NotFound            404       CS_HTTP_404, CS_SES_4001, CS_TICKET_4001, CS_KB_4001, CS_PLATFORM_4041,
    │                                 CS_AUTH_4041 (principal), CS_WGT_4041/4042 (site key, visitor's session)
    ├── MethodNotAllowed    405       CS_HTTP_405
    ├── Conflict            409       CS_TKT_4002, CS_TICKET_4092/4093/4094/4095, CS_KB_4002, CS_KB_4091,
    │                                 CS_AUTH_4091/4092 (principal name exists / revoked),
    │                                 CS_WGT_4091/4092 (site name exists / revoked)
    ├── RateLimited         429       CS_SES_4002 (with Retry-After), CS_AUTH_4291 (console sign-in blocked),
    │                                 CS_WGT_4291 (widget site limits)
    └── Unavailable         503       CS_SYS_5031
    ConfigError                       start-up configuration problem (never an HTTP response)
    StartupError                      start-up refused after I/O (database unreachable, port in use)

Third-party exceptions are translated where they happen (``raise ... from exc``); anything else that
reaches the HTTP layer becomes 500 ``CS_SYS_5001`` without leaking internals.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every error that maps to an HTTP response."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "CS_SYS_5001"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details
        self.headers = headers or {}


class BadRequest(ServiceError):
    status_code = 400
    default_code = "CS_REQ_4001"


class PayloadTooLarge(ServiceError):
    status_code = 413
    default_code = "CS_REQ_4131"


class Unauthenticated(ServiceError):
    status_code = 401
    default_code = "CS_AUTH_4011"


class Forbidden(ServiceError):
    status_code = 403
    default_code = "CS_AUTH_4001"


class NotFound(ServiceError):
    status_code = 404
    default_code = "CS_HTTP_404"


class MethodNotAllowed(ServiceError):
    status_code = 405
    default_code = "CS_HTTP_405"


class Conflict(ServiceError):
    status_code = 409
    default_code = "CS_HTTP_409"


class RateLimited(ServiceError):
    status_code = 429
    default_code = "CS_SES_4002"


class Unavailable(ServiceError):
    status_code = 503
    default_code = "CS_SYS_5031"


class ConfigError(Exception):
    """Configuration is invalid; the message is one line naming the variable and the fix."""


class StartupError(Exception):
    """Start-up refused after trying (database unreachable, bad password, port in use)."""
