"""``ai-customer-service sites create|list|revoke``: what an operator sees."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server import clean_env, run_cli, service_command


def test_sites_create_list_revoke(db_env: dict[str, str], tmp_path: Path) -> None:
    secret = "a-very-long-identity-secret"
    created = subprocess.run(
        service_command("sites", "create", "--name", "shop", "--origin", "https://Shop.example.com:443/",
                        "--origin", "https://www.shop.example.com", "--identity-secret-stdin"),
        input=secret + "\n", cwd=tmp_path, env=clean_env(db_env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "origins=https://shop.example.com,https://www.shop.example.com" in created.stdout
    assert 'data-site="ws_' in created.stdout and secret not in created.stdout
    key = created.stdout.split("key=")[1].split()[0]

    listed = run_cli("sites", "list", env=db_env, cwd=tmp_path)
    assert listed.returncode == 0 and key in listed.stdout and "yes" in listed.stdout
    assert secret not in listed.stdout

    again = run_cli(
        "sites", "create", "--name", "shop", "--origin", "https://x.example", env=db_env, cwd=tmp_path
    )
    assert again.returncode == 1 and "CS_WGT_4091" in again.stderr
    bad = run_cli(
        "sites", "create", "--name", "bad", "--origin", "shop.example.com", env=db_env, cwd=tmp_path
    )
    assert bad.returncode == 1 and "CS_REQ_4001" in bad.stderr

    revoked = run_cli("sites", "revoke", "shop", env=db_env, cwd=tmp_path)
    assert revoked.returncode == 0 and key in revoked.stdout
    assert "revoked" in run_cli("sites", "list", env=db_env, cwd=tmp_path).stdout
    twice = run_cli("sites", "revoke", key, env=db_env, cwd=tmp_path)
    assert twice.returncode == 1 and "CS_WGT_4092" in twice.stderr
