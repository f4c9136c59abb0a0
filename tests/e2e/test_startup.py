"""The runbook's start-up failure table, reproduced with the real process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.fake_postgres import PasswordRejectingServer
from tests.support.server import free_port, run_cli

PROD = {"AI_CS_RUNTIME_ENV": "production", "AI_CS_LOG_LEVEL": "info"}


def assert_one_line_failure(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_production_without_postgres_is_refused(tmp_path: Path) -> None:
    result = run_cli("serve", env={**PROD, "AI_CS_WEBHOOK_SECRET": "s" * 32}, cwd=tmp_path)
    assert_one_line_failure(
        result, "embedded store is not allowed in production", "AI_CS_POSTGRES_ENABLED=true"
    )


def test_production_without_dsn_is_refused(tmp_path: Path) -> None:
    env = {**PROD, "AI_CS_POSTGRES_ENABLED": "true", "AI_CS_WEBHOOK_SECRET": "s" * 32}
    assert_one_line_failure(run_cli("serve", env=env, cwd=tmp_path), "AI_CS_POSTGRES_DSN is required")


def test_production_without_webhook_secret_is_refused(tmp_path: Path) -> None:
    env = {**PROD, "AI_CS_POSTGRES_ENABLED": "true", "AI_CS_POSTGRES_DSN": "postgres://u@127.0.0.1:5432/test"}
    assert_one_line_failure(run_cli("serve", env=env, cwd=tmp_path), "AI_CS_WEBHOOK_SECRET is required")


def test_dsn_to_a_port_where_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **PROD,
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": f"postgres://ai_cs:pw@127.0.0.1:{port}/x?sslmode=disable",
        "AI_CS_WEBHOOK_SECRET": "s" * 32,
        "AI_CS_ADDR": f"127.0.0.1:{free_port()}",
    }
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert_one_line_failure(result, "connection refused", f"127.0.0.1:{port}", "AI_CS_POSTGRES_DSN")
    assert "pw" not in result.stderr


def test_wrong_password(tmp_path: Path) -> None:
    with PasswordRejectingServer() as fake:
        env = {
            **PROD,
            "AI_CS_POSTGRES_ENABLED": "true",
            "AI_CS_POSTGRES_DSN": f"postgres://ai_cs:wrong-pw@127.0.0.1:{fake.port}/ai_customer_service",
            "AI_CS_WEBHOOK_SECRET": "s" * 32,
            "AI_CS_ADDR": f"127.0.0.1:{free_port()}",
        }
        result = run_cli("serve", env=env, cwd=tmp_path)
    assert_one_line_failure(result, "rejected the password", "ai_cs", "AI_CS_POSTGRES_DSN")
    assert "wrong-pw" not in result.stderr


def test_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("serve", env={"AI_CS_ADDR": f"127.0.0.1:{port}"}, cwd=tmp_path)
    assert_one_line_failure(result, "address already in use", "AI_CS_ADDR")


@pytest.mark.parametrize(
    ("variable", "value"), [("AI_CS_WEBHOOK_MAX_SKEW_SECONDS", "abc"), ("AI_CS_ADDR", "nonsense")]
)
def test_invalid_configuration_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    assert_one_line_failure(run_cli("serve", env={variable: value}, cwd=tmp_path), variable)


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    result = run_cli(
        "serve",
        env={"AI_CS_DATA_DIR": str(tmp_path / "afile"), "AI_CS_ADDR": f"127.0.0.1:{free_port()}"},
        cwd=tmp_path,
    )
    assert_one_line_failure(result, "AI_CS_DATA_DIR", "afile")


def test_version_prints_and_binds_nothing(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli("--version", env={"AI_CS_ADDR": f"127.0.0.1:{port}"}, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("ai-customer-service ")
    assert not (tmp_path / "var").exists()
    with socket.socket() as probe:  # nothing listens there
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AI_CS_WEBHOOK_SECRET", "a"),
        ("AI_CS_ADMIN_TOKEN", "x"),
        ("AI_CS_METRICS_TOKEN", "t" * 31),
        ("AI_CS_PLATFORM_SUB2API_INGRESS_SECRET", "short"),
    ],
)
def test_production_refuses_trivial_secrets(tmp_path: Path, variable: str, value: str) -> None:
    env = {
        **PROD,
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": "postgres://u@127.0.0.1:5432/test",
        "AI_CS_WEBHOOK_SECRET": "w" * 32,
        "AI_CS_ADDR": f"127.0.0.1:{free_port()}",
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": "i" * 40,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": "c" * 40,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": "http://127.0.0.1:9/cb",
        variable: value,
    }
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    least = "at least 32" if variable.endswith(("_TOKEN", "TOKEN_SECRET")) else "at least 16"
    assert_one_line_failure(result, variable, "too short for production", least)
