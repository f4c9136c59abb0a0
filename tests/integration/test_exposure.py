"""Exposure switches (issue #12, item 11): API docs off in production unless asked for, and /metrics
behind a bearer token or on its own address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ai_customer_service.config import RuntimeEnv
from tests.integration.conftest import MakeClient
from tests.support.server import ServerProcess, free_port

DOC_PATHS = ("/openapi.json", "/docs", "/redoc")
METRICS_TOKEN = "m" * 40


async def _root_client(make_client: MakeClient, **overrides: object) -> httpx.AsyncClient:
    client = await make_client(**overrides)
    client.base_url = httpx.URL("http://testserver")
    return client


async def test_docs_are_served_by_default_outside_production(make_client: MakeClient) -> None:
    client = await _root_client(make_client)
    for path in DOC_PATHS:
        assert (await client.get(path)).status_code == 200, path


async def test_docs_are_off_in_production_unless_enabled(make_client: MakeClient) -> None:
    client = await _root_client(make_client, runtime_env=RuntimeEnv.PRODUCTION)
    for path in DOC_PATHS:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "CS_HTTP_404"
    enabled = await _root_client(make_client, runtime_env=RuntimeEnv.PRODUCTION, api_docs_enabled=True)
    assert (await enabled.get("/openapi.json")).status_code == 200
    off = await _root_client(make_client, api_docs_enabled=False)
    assert (await off.get("/docs")).status_code == 404


async def test_metrics_behind_a_token(make_client: MakeClient) -> None:
    client = await _root_client(make_client, metrics_token=METRICS_TOKEN)
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "CS_AUTH_4011"
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "cs_http_requests_total" in ok.text


@pytest.fixture
def server(db_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    metrics_port = free_port()
    env = {**db_env, "AI_CS_METRICS_ADDR": f"127.0.0.1:{metrics_port}", "AI_CS_METRICS_TOKEN": METRICS_TOKEN}
    proc = ServerProcess(env=env, cwd=tmp_path)
    proc.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_metrics_on_their_own_address(server: ServerProcess) -> None:
    metrics_url = f"http://127.0.0.1:{server.metrics_port}"  # type: ignore[attr-defined]
    assert httpx.get(f"{server.url}/metrics").status_code == 404  # no longer on the public port
    assert httpx.get(f"{metrics_url}/metrics").status_code == 401
    ok = httpx.get(f"{metrics_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "cs_http_requests_total" in ok.text
    assert ok.headers["content-type"].startswith("text/plain")
    assert httpx.get(f"{metrics_url}/other").status_code == 404
    assert httpx.get(f"{server.url}/actuator/health/live").status_code == 200
