"""How values look on the wire, both ways: the input checks of request bodies and query parameters
(contract §3: a bad value is a 400, never a database error turned into a 500) and the one format of
timestamps in responses.

- Text both databases can store: PostgreSQL refuses NUL (``\\x00``) in text, and no driver can encode
  an unpaired surrogate (JSON allows ``"\\ud800"``); SQLite would store the first and fail on the
  second. Request bodies derive from :class:`RequestModel`, which checks every string it holds (also
  inside lists and dicts), so a new field is covered without thinking about it. String query
  parameters put :data:`Storable` *after* their ``Query(...)``:
  ``q: Annotated[str | None, Query(max_length=200), Storable] = None`` (after, so that
  ``max_length`` keeps its usual message).
- :data:`UtcDateTime`: an RFC 3339 instant with a zone that is representable in UTC (e.g.
  ``0001-01-01T00:00:00+14:00`` is not), returned in UTC.
- :data:`Timestamp`: a response field's instant, always written as RFC 3339 in UTC with ``Z``
  (:func:`ai_customer_service.values.rfc3339`, the one serializer every timestamp on the wire uses).

Failures are pydantic validation errors, so they reach the client as 400 ``CS_REQ_4001`` with the
field named in ``details`` (``http/errors.py``), like every other invalid value. This module sits in
the foundation layer (domain schemas use it); the page types live in ``pagination.py``.
"""

from __future__ import annotations

import re
import types
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ai_customer_service.values import NUL_MESSAGE, SURROGATE_MESSAGE, rfc3339, unstorable_reason


def _first_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return unstorable_reason(value)
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if (reason := _first_problem(item)) is not None:
                return reason
    elif isinstance(value, dict):
        for key, item in value.items():
            if (reason := _first_problem(key) or _first_problem(item)) is not None:
                return reason
    return None


def check_storable(value: Any) -> Any:
    """Refuse a string (or a list / dict holding one) that cannot be stored; anything else passes."""
    reason = _first_problem(value)
    if reason == NUL_MESSAGE:
        raise PydanticCustomError("string_nul", NUL_MESSAGE)
    if reason is not None:
        raise PydanticCustomError("string_unicode", SURROGATE_MESSAGE)
    return value


Storable = AfterValidator(check_storable)
"""Metadata for ``Annotated[str | None, Query(...), Storable]``: no NUL, no unpaired surrogates."""

SafeStr = Annotated[str, Storable]
"""A ``str`` without NUL characters or unpaired surrogates (for strings without other constraints)."""


class RequestModel(BaseModel):
    """Base of back-office request bodies: the body must be a JSON object, unknown fields are refused,
    and every string the body holds must be storable (:func:`check_storable`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        if not isinstance(data, dict | BaseModel):  # pydantic's own words name Python, not JSON
            raise PydanticCustomError("body_not_object", "request body must be a JSON object")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _json_type(cls, value: Any, info: ValidationInfo) -> Any:
        """Strict JSON types for scalar fields: ``"yes"`` is not a boolean, ``"7"`` or ``7.0`` is not
        an integer (pydantic's lax mode would convert them; the API documents JSON types). Enums,
        dates and nested models keep their usual parsing from strings."""
        field = cls.model_fields.get(info.field_name or "")
        kind = _scalar_kind(field.annotation) if field is not None else None
        if value is not None and kind is not None and not _json_type_ok(kind, value):
            raise PydanticCustomError("json_type", "must be {expected}", {"expected": _JSON_TYPE_NAMES[kind]})
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_storable(value)


_JSON_TYPE_NAMES = {bool: "a boolean (true or false)", int: "an integer", float: "a number", str: "a string"}


def _scalar_kind(annotation: Any) -> type | None:
    """``bool``/``int``/``float``/``str`` when the field holds only that (or null), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) != 1:
            return None
        annotation = kinds[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation if annotation in _JSON_TYPE_NAMES else None


def _json_type_ok(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def to_utc(value: datetime) -> datetime:
    """The validator behind :data:`UtcDateTime`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("datetime_naive", "needs a time zone (e.g. Z or +08:00)")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "datetime_range", "is out of range: it must lie between years 1 and 9999 in UTC"
        ) from None


_NUMBER_RE = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def not_a_number(value: Any) -> Any:
    """Refuse a number (or a numeric string, as query parameters are) where a date-time belongs:
    pydantic would read ``0.5`` or ``1796563200`` as seconds since 1970; the docs ask for RFC 3339."""
    numeric = isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_RE.fullmatch(value))
    if numeric:
        raise PydanticCustomError(
            "datetime_type", "must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z, not a number"
        )
    return value


UtcDateTime = Annotated[datetime, BeforeValidator(not_a_number), AfterValidator(to_utc)]
"""A timezone-aware RFC 3339 datetime (never a number) that exists in UTC; converted to UTC."""


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]
"""A response field's instant: RFC 3339 in UTC with ``Z`` (e.g. ``2026-01-31T08:00:00.123456Z``); a
value without a zone is taken as UTC (the databases store UTC)."""
