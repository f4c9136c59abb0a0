"""The real service process: readiness, persistence, envelopes, shutdown, database outages."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import text

from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess, run_cli
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhooks import WEBHOOK, message, signed


@pytest.fixture
def server(db_env: dict[str, str], tmp_path: Path):
    proc = ServerProcess(env=db_env, cwd=tmp_path)
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_ready_live_and_health(server: ServerProcess, backend: str) -> None:
    ready = httpx.get(f"{server.url}/actuator/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "UP"
    assert body["components"][backend]["status"] == "UP"
    assert httpx.get(f"{server.url}/actuator/health/live").json() == {"status": "UP"}
    health = httpx.get(f"{server.url}/actuator/health")
    assert health.status_code == 200
    deadline = time.monotonic() + 20
    while health.json()["components"]["knowledge"]["status"] == "LOADING" and time.monotonic() < deadline:
        time.sleep(0.2)  # the first index build runs in the background after start-up
        health = httpx.get(f"{server.url}/actuator/health")
    knowledge = health.json()["components"]["knowledge"]
    assert (knowledge["status"], knowledge["entries"]) == ("UP", 0)
    # the operating point the bot answers at (docs/evaluation.md)
    assert 0.0 <= knowledge["operating_point"]["threshold"] <= 1.0
    assert knowledge["operating_point"]["source"] in ("self-calibrated", "fallback", "override")


def test_errors_are_json_envelopes_with_request_ids(server: ServerProcess) -> None:
    missing = httpx.get(f"{server.url}/no/such/path")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "CS_HTTP_404"
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]

    wrong = httpx.post(f"{server.url}/actuator/health/live")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "CS_HTTP_405"

    slash = httpx.get(f"{server.url}/actuator/health/")  # no redirect to an absolute http:// URL
    assert slash.status_code == 404 and slash.json()["error"]["code"] == "CS_HTTP_404"
    head = httpx.head(f"{server.url}/actuator/health/live")  # load balancers probe with HEAD
    assert head.status_code == 200 and head.content == b""

    echoed = httpx.get(f"{server.url}/actuator/health/live", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    junk = httpx.get(f"{server.url}/actuator/health/live", headers={"X-Request-ID": "bad id\twith tabs"})
    assert junk.headers["x-request-id"] != "bad id\twith tabs" and len(junk.headers["x-request-id"]) == 32


def test_openapi_docs_and_metrics(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["info"]["title"] == "ai-customer-service"
    # validation failures are documented as we answer them: 400 in our envelope, never FastAPI's 422
    responses = [op["responses"] for ops in spec["paths"].values() for op in ops.values()]
    assert not any("422" in r for r in responses)
    assert any(r.get("400", {}).get("content") for r in responses)
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    # back-office routes declare the bearer scheme (Swagger's Authorize button); the webhook does not
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    kb_list = spec["paths"]["/api/v1/customer-service/kb"]["get"]
    assert kb_list["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/api/v1/customer-service/webhook"]["post"]
    # the interactive docs work without internet access: every asset is served by this process
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = httpx.get(f"{server.url}{page}")
        assert html.status_code == 200
        assert "cdn." not in html.text and "googleapis" not in html.text
        assert f"/docs/static/{asset}" in html.text
        script = httpx.get(f"{server.url}/docs/static/{asset}")
        assert script.status_code == 200 and len(script.content) > 100_000
    httpx.get(f"{server.url}/actuator/health/live")
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'cs_http_requests_total{method="GET",route="/actuator/health/live",status="200"}' in metrics
    assert "cs_http_request_duration_seconds_bucket" in metrics


def test_sigterm_drains_and_exits_zero(db_env: dict[str, str], tmp_path: Path) -> None:
    proc = ServerProcess(env={**db_env, "AI_CS_LOG_LEVEL": "info"}, cwd=tmp_path).start()
    code = proc.stop(signal.SIGTERM)
    assert code == 0
    assert "service stopped" in proc.logs()
    assert "Traceback" not in proc.logs()


def test_embedded_store_keeps_its_data_across_restarts(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("embedded store only")
    env = {"AI_CS_RUNTIME_ENV": "development", "AI_CS_DATA_DIR": str(tmp_path / "var")}
    first = ServerProcess(env=env, cwd=tmp_path).start()
    first.stop()
    db_file = tmp_path / "var" / "ai_customer_service.db"
    assert db_file.exists()
    size = db_file.stat().st_size
    second = ServerProcess(env=env, cwd=tmp_path).start()
    try:
        assert httpx.get(f"{second.url}/actuator/health/ready").status_code == 200
    finally:
        second.stop()
    assert db_file.stat().st_size >= size


@pytest.mark.usefixtures("postgres_only")
def test_readiness_follows_the_database_and_recovers(db_env: dict[str, str], tmp_path: Path) -> None:
    dsn = urlsplit(db_env["AI_CS_POSTGRES_DSN"])
    proxy = TcpProxy(dsn.hostname or "127.0.0.1", dsn.port or 5432).start()
    netloc = dsn.netloc.replace(f"{dsn.hostname}:{dsn.port}", f"127.0.0.1:{proxy.port}")
    env = {**db_env, "AI_CS_POSTGRES_DSN": urlunsplit(dsn._replace(netloc=netloc))}
    server = ServerProcess(env=env, cwd=tmp_path).start()
    try:
        proxy.stop()
        went_down = None
        start = time.monotonic()
        while time.monotonic() - start < 10:
            ready = httpx.get(f"{server.url}/actuator/health/ready", timeout=5)
            if ready.status_code == 503:
                went_down = time.monotonic() - start
                body = ready.json()
                assert body["status"] == "DOWN"
                assert body["components"]["postgres"]["status"] == "DOWN"
                break
            time.sleep(0.2)
        assert went_down is not None, "ready never went DOWN"
        assert httpx.get(f"{server.url}/actuator/health/live").status_code == 200
        # requests that need the database say "retry later", not "internal error"
        raw, headers = signed(message("hello", message_id="during-outage"), TEST_SECRET)
        outage = httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=30)
        assert outage.status_code == 503, outage.text
        assert outage.json()["error"]["code"] == "CS_SYS_5031" and outage.headers["retry-after"] == "2"

        proxy.start(proxy.port)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if httpx.get(f"{server.url}/actuator/health/ready", timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("ready did not recover after the database came back")
    finally:
        server.stop()
        proxy.stop()


async def test_a_build_one_version_back_runs_on_a_newer_schema(
    db: Database, db_env: dict[str, str], tmp_path: Path
) -> None:
    """What the runbook's rollback relies on from now on: when the *next* release has migrated the
    database (additively), this build, one version back, starts, reports ready and answers without
    trying to migrate. (0.1.x predates this; rolling back across 0.2.0's migrations needs the backup,
    see CHANGELOG.md.)"""
    async with db.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE cs_sessions ADD COLUMN added_by_next_release VARCHAR(16)"))
        await conn.execute(text("UPDATE alembic_version SET version_num = '0099_next_release'"))
    await db.dispose()
    migrate = run_cli("migrate", env=db_env, cwd=tmp_path)
    assert migrate.returncode == 0 and "newer than this build" in migrate.stdout, migrate.stderr
    proc = ServerProcess(env=db_env, cwd=tmp_path).start()
    try:
        ready = httpx.get(f"{proc.url}/actuator/health/ready")
        assert ready.status_code == 200, ready.text
        raw, headers = signed(message("hello"), TEST_SECRET)
        answer = httpx.post(f"{proc.url}{WEBHOOK}", content=raw, headers=headers)
        assert answer.status_code == 200 and answer.json()["session_id"]
    finally:
        proc.stop()
    assert "newer than this build" in proc.logs()


@pytest.mark.usefixtures("postgres_only")
def test_several_http_workers_share_the_port_and_drain_on_sigterm(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    server = ServerProcess(env={**db_env, "AI_CS_HTTP_WORKERS": "2"}, cwd=tmp_path).start()
    try:
        assert server.proc is not None
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
        assert len(children) == 2
        with httpx.Client(base_url=server.url) as client:
            for i in range(6):  # a new connection each: both processes accept
                body, headers = signed(message("hello", open_id=f"mp-{i}", message_id=f"mp-{i}"), TEST_SECRET)
                answer = httpx.post(f"{server.url}{WEBHOOK}", content=body, headers=headers)
                assert answer.status_code == 200, answer.text
                assert answer.json()["duplicate"] is False
            body, headers = signed(message("hello", open_id="mp-0", message_id="mp-0"), TEST_SECRET)
            assert client.post(WEBHOOK, content=body, headers=headers).json()["duplicate"] is True
        # one /metrics for the whole server, whichever process answers the scrape
        pattern = re.compile(r'cs_http_requests_total\{method="POST",route="/webhook",status="200"\} (\S+)')
        for _ in range(4):  # a new connection each, so both processes answer some scrapes
            scrape = httpx.get(f"{server.url}/metrics").text
            found = pattern.search(scrape)
            assert found is not None and float(found.group(1)) == 7.0, scrape
            assert "cs_db_pool_size" in scrape
    finally:
        status = server.stop()
    assert status == 0, server.logs()


@pytest.mark.usefixtures("postgres_only")
def test_http_workers_do_not_outlive_a_killed_parent(db_env: dict[str, str], tmp_path: Path) -> None:
    server = ServerProcess(env={**db_env, "AI_CS_HTTP_WORKERS": "2"}, cwd=tmp_path).start()
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    assert len(children) == 2
    server.proc.kill()  # SIGKILL: the parent cannot pass anything on
    server.proc.wait(timeout=10)
    for leftover in Path(tempfile.gettempdir()).glob(f"aics-metrics-{server.proc.pid}-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # its metrics directory, which it could not remove

    def alive(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # never leave a stray server behind, even when the assertion fails
        os.kill(int(pid), signal.SIGKILL)
    assert not left, "workers outlived their parent and kept the port"
