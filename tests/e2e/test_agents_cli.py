"""`ai-customer-service agents create|list|revoke` against a real server process."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import ServerProcess, run_cli

API = "/api/v1/customer-service"


def test_agents_cli_token_works_against_a_real_server(db_env: dict[str, str], tmp_path: Path) -> None:
    created = run_cli("agents", "create", "--name", "boss", "--role", "admin", env=db_env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("cst_") and " " not in token

    server = ServerProcess(env=db_env, cwd=tmp_path).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{server.url}{API}/me", headers=headers)
        assert me.status_code == 200 and me.json()["name"] == "boss" and me.json()["role"] == "admin"

        listed = run_cli("agents", "list", env=db_env, cwd=tmp_path)
        assert listed.returncode == 0 and "boss" in listed.stdout and token not in listed.stdout
        dup = run_cli("agents", "create", "--name", "boss", "--role", "agent", env=db_env, cwd=tmp_path)
        assert dup.returncode == 1 and "CS_AUTH_4091" in dup.stderr

        revoked = run_cli("agents", "revoke", "boss", env=db_env, cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        after = httpx.get(f"{server.url}{API}/me", headers=headers)
        assert after.status_code == 401 and after.json()["error"]["code"] == "CS_AUTH_4011"
    finally:
        server.stop()
