"""The published OpenAPI document says what the service answers (issue #12, item 10).

FastAPI documents only the success response and its own 422. We answer invalid input with 400 in our
error envelope, and every route can also answer a few documented errors that FastAPI cannot see
(they come from dependencies, middleware and services). :func:`document` post-processes the
generated document once:

- 422 becomes 400 ``CS_REQ_4001`` in the envelope, on every operation that takes input;
- 401 and 403 (bearer-authenticated operations), 403 (signed operations: ``CS_AUTH_403x``),
  404 (operations with a path parameter), 409 (changes), 413 (bodies), 429 (``CS_AUTH_4291`` throttle
  and the per-customer rate limit) and 503 (``CS_SYS_5031``, with ``Retry-After``) where they apply,
  each with the ``ErrorEnvelope`` schema;
- the signed operations document the ``X-CS-Timestamp`` / ``X-CS-Signature`` headers.

Request bodies of the routes that read the raw body (the signature covers the exact bytes) are
declared on the routes themselves (``openapi_extra``), so Swagger can send them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ai_customer_service.config import Settings
from ai_customer_service.errors import REQ_INVALID

_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
_ERRORS: dict[str, tuple[str, bool]] = {
    "400": ("Invalid request: `CS_REQ_4001` (or the route's own `CS_*` code)", False),
    "401": ("Authentication required or invalid: `CS_AUTH_4011` (with `WWW-Authenticate: Bearer`)", False),
    "403": ("Role not allowed (`CS_AUTH_4001`) or signature refused (`CS_AUTH_4031`..`4034`)", False),
    "404": ("Not found: `CS_HTTP_404` or the resource's own code", False),
    "409": ("Conflict with the resource's current state (e.g. `CS_TICKET_4092`, `CS_KB_4002`)", False),
    "413": ("Request body larger than `AI_CS_MAX_BODY_BYTES`: `CS_REQ_4131`", False),
    "429": ("Too many requests: `CS_AUTH_4291` (failed authentication) or `CS_SES_4002`", True),
    "503": ("Storage temporarily unavailable: `CS_SYS_5031`", True),
}
_SIGNED_MARKERS = ("/webhook", "/feedback")


def raw_json_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its raw bytes (a signature covers them): the JSON
    object it expects, documented as if FastAPI had parsed it (no other fields allowed)."""
    schema = {"type": "object", "additionalProperties": False, "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _error(status: str) -> dict[str, Any]:
    description, retry = _ERRORS[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ENVELOPE_REF}},
    }
    if retry:
        response["headers"] = _RETRY_AFTER
    return response


def _signature_headers(settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            "name": settings.webhook_timestamp_header,
            "in": "header",
            "required": False,
            "description": "Unix seconds of the signature (required when a secret is configured)",
            "schema": {"type": "string"},
        },
        {
            "name": settings.webhook_signature_header,
            "in": "header",
            "required": False,
            "description": "`sha256=` + hex HMAC-SHA256 of `timestamp.body` (docs/security.md)",
            "schema": {"type": "string"},
        },
    ]


def _annotate(path: str, method: str, operation: dict[str, Any], api_prefix: str, settings: Settings) -> None:
    responses = operation.setdefault("responses", {})
    had_validation = responses.pop("422", None) is not None
    signed = path.startswith(api_prefix) and any(marker in path for marker in _SIGNED_MARKERS)
    wanted: set[str] = set()
    if had_validation or operation.get("requestBody") or operation.get("parameters"):
        wanted.add("400")
    if operation.get("security"):
        wanted.update(("401", "403"))
    if signed:
        wanted.add("403")
        known = {p.get("name", "").lower() for p in operation.get("parameters", [])}
        extra = [h for h in _signature_headers(settings) if h["name"].lower() not in known]
        operation["parameters"] = [*operation.get("parameters", []), *extra]
    if "{" in path:
        wanted.add("404")
    if path.startswith(api_prefix):
        wanted.update(("429", "503"))
        if method in ("post", "put", "patch", "delete"):
            wanted.add("409")
        if method in ("post", "put", "patch"):
            wanted.add("413")
    for status in sorted(wanted):
        responses.setdefault(status, _error(status))


def document(app: FastAPI, settings: Settings, api_prefix: str) -> dict[str, Any]:
    """The app's OpenAPI document, built once (FastAPI's ``app.openapi`` replacement)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _annotate(path, method, operation, api_prefix, settings)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components["ErrorEnvelope"] = {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "request_id"],
                    "properties": {
                        "code": {"type": "string", "example": REQ_INVALID},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object"}},
                        "aliases": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "older spellings of `code` (`CS_TKT_4003` of `CS_TICKET_4003`)",
                        },
                    },
                }
            },
        }
        app.openapi_schema = schema
    return app.openapi_schema
