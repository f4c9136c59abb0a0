"""Maps every error to the JSON envelope ``{"error": {"code", "message", "request_id", "details"?,
"aliases"?}}`` (``aliases``: a renamed code's older spellings, ``errors.ALIASES``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ai_customer_service.errors import (
    ALIASES,
    AUTH_DENIED,
    AUTH_REQUIRED,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    REQ_INVALID,
    REQ_MEDIA_TYPE,
    REQ_TOO_LARGE,
    SYS_UNAVAILABLE,
    ServiceError,
)
from ai_customer_service.logs import get_logger

log = get_logger(__name__)

# the database is unreachable or busy right now: the client should retry, not report a bug
UNAVAILABLE_RETRY_AFTER = "2"

_HTTP_CODES = {
    400: (REQ_INVALID, "invalid request"),
    401: (AUTH_REQUIRED, "authentication required"),
    403: (AUTH_DENIED, "access denied"),
    404: (HTTP_NOT_FOUND, "resource not found"),
    405: (HTTP_METHOD_NOT_ALLOWED, "method not allowed"),
    413: (REQ_TOO_LARGE, "request body too large"),
    415: (REQ_MEDIA_TYPE, "unsupported media type"),
    422: (REQ_INVALID, "invalid request"),
}


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_of(request)}
    if details:
        body["details"] = details
    if code in ALIASES:
        body["aliases"] = list(ALIASES[code])
    request.state.error_code = code
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc.pop(0) if loc and loc[0] in _LOCATIONS else ""
        kind = err.get("type")
        if kind == "json_invalid":
            problem = str((err.get("ctx") or {}).get("error", "")).strip()
            message = "request body is not valid JSON" + (f": {problem}" if problem else "")
            details.append({"field": "", "message": message})
        elif kind == "missing" and where == "body" and not loc:
            details.append({"field": "", "message": "a JSON request body is required"})
        else:
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            details.append({"field": ".".join(loc), "message": message})
    return details


def _summary(details: list[dict[str, Any]]) -> str:
    """The first problem, so the top-level message is useful on its own."""
    if not details:
        return "invalid request"
    first = details[0]
    return f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(
            request, exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        return error_response(request, 400, REQ_INVALID, _summary(details), details=details)

    async def _storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not _is_unavailable(exc):
            raise exc  # a bug, not an outage: the last-resort handler answers 500 CS_SYS_5001
        log.warning("database unavailable", error=type(exc).__name__, path=request.url.path)
        return error_response(
            request,
            503,
            SYS_UNAVAILABLE,
            "storage temporarily unavailable; retry later",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        )

    app.add_exception_handler(SQLAlchemyError, _storage_unavailable)
    app.add_exception_handler(OSError, _storage_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, (f"CS_HTTP_{exc.status_code}", "request failed"))
        if exc.status_code in (400, 404, 413) and exc.detail not in (None, "Not Found", "Bad Request"):
            message = str(exc.detail)
        return error_response(request, exc.status_code, code, message, headers=exc.headers)


# PostgreSQL conditions that pass by themselves: deadlock, serialization failure, lock or statement
# timeout, too many connections, server shutting down or starting
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03", "57014", "53300", "57P01", "57P03"})


def _is_unavailable(exc: BaseException) -> bool:
    """Connection refused/reset/timed out, a dropped pooled connection, pool exhaustion, a locked
    SQLite file, a transient PostgreSQL condition: things that pass by themselves (503, retry).
    A missing table or a constraint violation is a bug or bad data, not an outage (500)."""
    if isinstance(exc, (OSError, PoolTimeout, InterfaceError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _TRANSIENT_SQLSTATES or str(sqlstate).startswith("08")  # 08: connection
    if isinstance(exc, OperationalError):
        if type(orig).__module__.startswith("sqlite3"):
            text = str(orig).lower()
            return "locked" in text or "busy" in text
        return True  # the driver lost or could not open the connection
    return False
