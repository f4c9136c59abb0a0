"""Shipping as the original shipped: the wheel carries every file the package reads, the container's
entrypoint works, and the deployment files point the probes at our health endpoints.

The full fresh-venv install-and-serve check is ``scripts/wheel_smoke.sh`` (minutes: it installs every
dependency and embeds the demo KB with the real model); no container runtime runs here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "ai_customer_service"
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"


def _entrypoint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={**os.environ, "PATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_wheel_holds_every_file_the_package_reads(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("ai_customer_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "ai_customer_service/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert wanted - names == set()
    assert "ai_customer_service/db/migrations/versions/0013_audit_original_shape.py" in names
    assert "ai_customer_service/knowledge/demo/kb.jsonl" in names


def test_the_entrypoint_runs_commands_and_the_healthcheck() -> None:
    version = _entrypoint("--version")
    assert version.returncode == 0 and version.stdout.startswith("ai-customer-service ")
    assert "CREATE TABLE cs_sessions" in _entrypoint("migrate", "--sql").stdout
    assert _entrypoint("echo", "anything else runs as given").stdout.strip() == "anything else runs as given"
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = _entrypoint("healthcheck", env={"AI_CS_ADDR": f":{port}"})
    assert down.returncode == 1 and "live probe failed" in down.stderr


def test_the_entrypoints_healthcheck_passes_against_a_live_server(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.support.server import ServerProcess

    server = ServerProcess(env=db_env, cwd=tmp_path).start()
    try:
        assert _entrypoint("healthcheck", env={"AI_CS_ADDR": f"127.0.0.1:{server.port}"}).returncode == 0
    finally:
        server.stop()


def test_the_deployment_files_use_our_probes_and_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and '"docker-entrypoint.sh", "healthcheck"' in dockerfile
    assert "USER 10001:10001" in dockerfile and dockerfile.count("FROM ") >= 2
    assert "--version" in dockerfile
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probes = {
        name: container[name]["httpGet"]["path"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": "/actuator/health/live",
        "livenessProbe": "/actuator/health/live",
        "readinessProbe": "/actuator/health/ready",
    }
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["ai-customer-service"]["environment"]["AI_CS_POSTGRES_DSN"].startswith(
        "host=postgres "
    )
    for path in (ROOT / "deploy" / "k8s").glob("*.yaml"):
        assert yaml.safe_load(path.read_text()), path


@pytest.mark.bench
def test_wheel_installs_into_a_fresh_venv_and_serves() -> None:
    """Opt-in (``-m bench``): scripts/wheel_smoke.sh, a few minutes."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "wheel_smoke.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "wheel smoke test passed" in result.stdout
