"""The wire formats: one timestamp format in every response, and a typed body for every JSON route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel

from ai_customer_service.config import Settings
from ai_customer_service.main import create_app
from ai_customer_service.pagination import Page, offset
from ai_customer_service.values import json_safe, rfc3339
from ai_customer_service.wire import Timestamp


def test_rfc3339_is_utc_with_z_whatever_the_zone() -> None:
    at = datetime(2026, 1, 31, 8, 0, 0, 123456, tzinfo=UTC)
    assert rfc3339(at) == "2026-01-31T08:00:00.123456Z"
    assert rfc3339(at.astimezone(timezone(timedelta(hours=8)))) == "2026-01-31T08:00:00.123456Z"
    assert rfc3339(datetime(2026, 1, 31, 8, 0)) == "2026-01-31T08:00:00Z"  # naive: stored UTC
    assert json_safe({"at": at}) == {"at": "2026-01-31T08:00:00.123456Z"}


class _Row(BaseModel):
    at: Timestamp
    maybe: Timestamp | None = None


def test_timestamp_fields_serialise_with_z_also_from_offset_strings() -> None:
    row = _Row.model_validate({"at": "2026-01-31T08:00:00+00:00", "maybe": "2026-01-31T16:00:00+08:00"})
    assert row.model_dump(mode="json") == {"at": "2026-01-31T08:00:00Z", "maybe": "2026-01-31T08:00:00Z"}


def test_one_page_type() -> None:
    page = Page[_Row](items=[_Row(at=datetime(2026, 1, 1, tzinfo=UTC))], total=7, page=2, page_size=1)
    assert page.model_dump(mode="json") == {
        "items": [{"at": "2026-01-01T00:00:00Z", "maybe": None}],
        "total": 7,
        "page": 2,
        "page_size": 1,
    }
    assert page.map(lambda r: r.at.year) == [2026]
    assert offset(1, 50) == 0 and offset(3, 20) == 40


def test_every_json_response_is_a_named_model(tmp_path: Path) -> None:
    app = create_app(Settings(_env_file=None, runtime_env="test", data_dir=tmp_path))  # type: ignore[call-arg]
    untyped = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                body = response.get("content", {}).get("application/json")
                if status.startswith("2") and body is not None and "$ref" not in body.get("schema", {}):
                    untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []
