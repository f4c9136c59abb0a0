"""The conversation owns its session: one module writes a session's status, and the conversation
and outbox packages import nothing of the ticket package (tickets build on conversations)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ai_customer_service"
WRITER = SRC / "conversation" / "repository.py"
# the in-place conversion of the original Go service's database rewrites old rows once
MIGRATIONS = {SRC / "db" / "adopt.py"}

# an UPDATE of cs_sessions, or an assignment to a session's status
STATUS_WRITE = re.compile(r"update\(\s*(Session|_sessions)\b|\bsession\.status\s*=(?!=)")


def _python_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_only_the_conversation_repository_writes_a_session_status() -> None:
    writers = [
        f"{path.relative_to(SRC)}:{number}"
        for path in _python_files()
        if path != WRITER and path not in MIGRATIONS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if STATUS_WRITE.search(line)
    ]
    assert writers == []


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_conversation_and_outbox_import_nothing_of_ticket() -> None:
    for package in ("conversation", "outbox"):
        assert not [m for m in _imports(package) if m.startswith("ai_customer_service.ticket")], package
