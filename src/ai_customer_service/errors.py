"""The documented error tree, and every ``CS_*`` code as a constant.

::

    ServiceError                      base; carries code, HTTP status, safe message, details
    ├── BadRequest          400       CS_REQ_4001..4010, CS_TICKET_4003 (agent_id not active),
    │                                 CS_KB_4004 (import file), CS_WGT_4001 (widget message too long)
    ├── Unauthenticated     401       CS_AUTH_4011 (with WWW-Authenticate: Bearer), CS_AUTH_4012 (console
    │                                 sign-in: wrong user name or password), CS_WGT_4011 (widget visitor
    │                                 token missing)
    ├── Forbidden           403       CS_AUTH_4001, CS_AUTH_4031..4034 (webhook signature), CS_AUTH_4035
    │                                 (signed request re-sent to another path), CS_AUTH_4036
    │                                 (console form without its CSRF token), CS_WGT_4031..4035 (widget:
    │                                 revoked site, origin, visitor token, identity)
    ├── NotFound            404       CS_HTTP_404, CS_SES_4001, CS_TICKET_4001, CS_KB_4001, CS_PLATFORM_4041,
    │                                 CS_AUTH_4041 (principal), CS_OUTBOX_4041, CS_WGT_4041/4042 (site key,
    │                                 visitor's session)
    ├── Conflict            409       CS_TKT_4002, CS_TICKET_4092..4095, CS_REQ_4091, CS_SES_4091..4093,
    │                                 CS_KB_4002/4003/4091, CS_OUTBOX_4091, CS_AUTH_4091/4092 (principal
    │                                 name exists / revoked), CS_WGT_4091/4092 (site name exists / revoked)
    └── RateLimited         429       CS_SES_4002 (with Retry-After), CS_AUTH_4291 (console sign-in blocked),
                                      CS_WGT_4291 (widget site limits)
    ConfigError                       start-up configuration problem (never an HTTP response)
    StartupError                      start-up refused after I/O (database unreachable, port in use)

The HTTP layer answers the rest itself (``http/errors.py``, ``http/middleware.py``): 400/405/413/415
for what never reaches a handler, 503 ``CS_SYS_5031`` for an unreachable database, and 500
``CS_SYS_5001`` without leaking internals for anything else. Third-party exceptions are translated
where they happen (``raise ... from exc``).

**Codes.** Raise with a constant below, never a new literal: ``tests/unit/test_error_codes.py`` fails
on a ``CS_*`` string in ``src/`` that is not declared here. Tickets use the one prefix ``CS_TICKET_``;
``CS_TKT_4002`` keeps the spelling of the original's runbook and the contract (its older spelling
``CS_TICKET_4091`` is sent along in ``aliases``). A renamed code keeps its old spelling in
:data:`ALIASES`: the error envelope carries it in ``aliases`` and the console still knows it.
"""

from __future__ import annotations

from typing import Any, ClassVar

# --- codes (contract §12, docs/api.md, docs/tickets.md) --------------------------------------------
# HTTP
HTTP_NOT_FOUND = "CS_HTTP_404"
HTTP_METHOD_NOT_ALLOWED = "CS_HTTP_405"
HTTP_CONFLICT = "CS_HTTP_409"
# request
REQ_INVALID = "CS_REQ_4001"  # invalid JSON / unknown field / bad value
REQ_REQUIRED = "CS_REQ_4002"  # channel, open_id and content are required
REQ_CONTENT_CUT = "CS_REQ_4003"  # content cut to the maximum length (audited, not returned)
REQ_UNREADABLE = "CS_REQ_4004"  # unable to read the request body
REQ_AGENT_REQUIRED = "CS_REQ_4005"  # ticket_id and agent_id are required
REQ_RESOLUTION_REQUIRED = "CS_REQ_4006"  # resolve
REQ_CLOSE_RESOLUTION_REQUIRED = "CS_REQ_4007"  # close
REQ_CHANNEL = "CS_REQ_4008"  # channel missing / not configured
REQ_FEEDBACK_SCORE = "CS_REQ_4009"  # score must be between 1 and 5
REQ_HANDOFF_REASON = "CS_REQ_4010"  # handoff reason is required
REQ_MESSAGE_ID_TAKEN = "CS_REQ_4091"  # message_id reused by another customer
REQ_TOO_LARGE = "CS_REQ_4131"
REQ_MEDIA_TYPE = "CS_REQ_4151"
# authentication and signatures
AUTH_DENIED = "CS_AUTH_4001"
AUTH_REQUIRED = "CS_AUTH_4011"
AUTH_SIGN_IN_FAILED = "CS_AUTH_4012"
AUTH_SIGNATURE_PREFIX = "CS_AUTH_403"  # the webhook signature family below (throttled like a 401)
AUTH_SIGNATURE_MISSING = "CS_AUTH_4031"
AUTH_TIMESTAMP_INVALID = "CS_AUTH_4032"
AUTH_STALE_REQUEST = "CS_AUTH_4033"
AUTH_SIGNATURE_INVALID = "CS_AUTH_4034"
AUTH_SIGNATURE_REUSED = "CS_AUTH_4035"
AUTH_CSRF = "CS_AUTH_4036"
AUTH_PRINCIPAL_NOT_FOUND = "CS_AUTH_4041"
AUTH_PRINCIPAL_EXISTS = "CS_AUTH_4091"
AUTH_PRINCIPAL_REVOKED = "CS_AUTH_4092"
AUTH_SIGN_IN_BLOCKED = "CS_AUTH_4291"
# sessions
SES_NOT_FOUND = "CS_SES_4001"
SES_RATE_LIMITED = "CS_SES_4002"
SES_CLOSED = "CS_SES_4091"
SES_HAS_OPEN_TICKET = "CS_SES_4092"  # close refused
SES_HANDOFF_HAS_TICKET = "CS_SES_4093"  # handoff refused
# tickets
TICKET_NOT_FOUND = "CS_TICKET_4001"
TICKET_ASSIGN_CONFLICT = "CS_TKT_4002"  # the contract's spelling
TICKET_AGENT_NOT_ACTIVE = "CS_TICKET_4003"
TICKET_RESOLVE_CONFLICT = "CS_TICKET_4092"
TICKET_CLOSE_CONFLICT = "CS_TICKET_4093"
TICKET_REOPEN_CONFLICT = "CS_TICKET_4094"
TICKET_REPLY_CONFLICT = "CS_TICKET_4095"
# knowledge base
KB_NOT_FOUND = "CS_KB_4001"
KB_TITLE_EXISTS = "CS_KB_4002"
KB_KEY_EXISTS = "CS_KB_4003"
KB_IMPORT_INVALID = "CS_KB_4004"
KB_VERSION_CONFLICT = "CS_KB_4091"
# the optional LLM (logged; the bot falls back)
LLM_UNAVAILABLE = "CS_LLM_5001"
LLM_TIMEOUT = "CS_LLM_5002"
LLM_BREAKER_OPEN = "CS_LLM_5003"
# platforms and the outbox
PLATFORM_NOT_FOUND = "CS_PLATFORM_4041"
OUTBOX_EVENT_NOT_FOUND = "CS_OUTBOX_4041"
OUTBOX_NOT_DEAD = "CS_OUTBOX_4091"
# the widget
WGT_MESSAGE_TOO_LONG = "CS_WGT_4001"
WGT_TOKEN_MISSING = "CS_WGT_4011"  # noqa: S105 - an error code
WGT_SITE_REVOKED = "CS_WGT_4031"
WGT_ORIGIN = "CS_WGT_4032"
WGT_TOKEN_INVALID = "CS_WGT_4033"  # noqa: S105 - an error code
WGT_TOKEN_OTHER_SITE = "CS_WGT_4034"  # noqa: S105 - an error code
WGT_IDENTITY = "CS_WGT_4035"
WGT_SITE_NOT_FOUND = "CS_WGT_4041"
WGT_SESSION_NOT_FOUND = "CS_WGT_4042"
WGT_SITE_EXISTS = "CS_WGT_4091"
WGT_SITE_ALREADY_REVOKED = "CS_WGT_4092"
WGT_RATE_LIMITED = "CS_WGT_4291"
# the system
SYS_INTERNAL = "CS_SYS_5001"
SYS_UNAVAILABLE = "CS_SYS_5031"

ALIASES: dict[str, tuple[str, ...]] = {
    TICKET_ASSIGN_CONFLICT: ("CS_TICKET_4091",),  # the original's other spelling (contract §12)
    TICKET_AGENT_NOT_ACTIVE: ("CS_TKT_4003",),  # renamed in 0.3.0 (one ticket prefix)
}
"""Older spellings of a code, sent along in the error envelope's ``aliases``."""


def all_codes() -> frozenset[str]:
    """Every code declared above, old spellings included."""
    declared = {v for k, v in globals().items() if k.isupper() and isinstance(v, str) and v.startswith("CS_")}
    return frozenset(declared | {old for olds in ALIASES.values() for old in olds})


class ServiceError(Exception):
    """Base of every error that maps to an HTTP response."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = SYS_INTERNAL

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
    default_code = REQ_INVALID


class Unauthenticated(ServiceError):
    status_code = 401
    default_code = AUTH_REQUIRED


class Forbidden(ServiceError):
    status_code = 403
    default_code = AUTH_DENIED


class NotFound(ServiceError):
    status_code = 404
    default_code = HTTP_NOT_FOUND


class Conflict(ServiceError):
    status_code = 409
    default_code = HTTP_CONFLICT


class RateLimited(ServiceError):
    status_code = 429
    default_code = SES_RATE_LIMITED


class ConfigError(Exception):
    """Configuration is invalid; the message is one line naming the variable and the fix."""


class StartupError(Exception):
    """Start-up refused after trying (database unreachable, bad password, port in use)."""
