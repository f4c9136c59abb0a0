"""The published API says what it does (issue #12, item 10).

- ``/openapi.json`` documents the error answers (401/403/404/409/413/429/503) with the envelope, the
  request bodies of the raw-body routes, and distinct operation ids for GET and HEAD;
- a bounded property-based fuzz (schemathesis, positive generation from the document) against a real
  server: no 5xx, and every response matches the document (status code, content type, schema).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.server import ServerProcess

ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef0123"
MAX_EXAMPLES = 250
API = "/api/v1/customer-service"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    env = {
        "AI_CS_RUNTIME_ENV": "test",
        "AI_CS_DATA_DIR": str(workdir / "var"),
        "AI_CS_EMBEDDING_MODEL": "hashing",
        "AI_CS_LOG_LEVEL": "warning",
        "AI_CS_ADMIN_TOKEN": ADMIN_TOKEN,
        # unsigned webhooks and no throttle, so generated bodies reach parsing and validation
        "AI_CS_WEBHOOK_SECRET": "",
        "AI_CS_AUTH_FAILURE_LIMIT": "0",
        "AI_CS_RATE_LIMIT_MESSAGES": "0",
        "AI_CS_OUTBOX_WORKER_ENABLED": "false",
    }
    proc = ServerProcess(env=env, cwd=workdir)
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_the_document_lists_the_errors_and_bodies(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    paths = doc["paths"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    ticket_assign = paths[API + "/tickets/{ticket_id}/assign"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "429", "503"):
        assert ticket_assign[status]["content"]["application/json"]["schema"] == envelope, status
    assert "Retry-After" in ticket_assign["429"]["headers"]
    for path in (
        API + "/sessions/{session_id}/feedback",
        API + "/platforms/{platform}/webhook",
        API + "/kb/import",
    ):
        assert "requestBody" in paths[path]["post"], path
    assert set(paths[API + "/kb/import"]["post"]["requestBody"]["content"]) == {
        "application/x-ndjson",
        "text/csv",
        "application/json",
    }
    ids = Counter(op["operationId"] for ops in paths.values() for op in ops.values())
    assert [op for op, n in ids.items() if n > 1] == []
    assert paths["/actuator/health/live"]["head"]["operationId"] == "live_head"
    assert "422" not in str(doc["paths"])


def test_the_first_request_writes_no_warning(server: ServerProcess) -> None:
    httpx.get(f"{server.url}/openapi.json")
    assert "Duplicate Operation ID" not in server.logs()
    assert "UserWarning" not in server.logs()


def test_fuzz_the_documented_api(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    statuses: Counter[int] = Counter()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @given(case=schema.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        headers = {**(case.headers or {}), **auth}
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=checks, headers=headers)

    run()
    print(f"fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= MAX_EXAMPLES // 2
    assert not [status for status in statuses if status >= 500]
