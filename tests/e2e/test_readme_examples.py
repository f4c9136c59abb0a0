"""The README's curl examples, in both languages, run as written against a real server.

Each ```bash block with a `curl` in it is run by bash, with only `localhost:8080` pointed at the test
server; a `curl` wrapper appends the HTTP status to each response. Unsigned examples run against a
server started as `make run` starts it (demo KB, no webhook secret); the signed example against the
same data restarted with the README's `export AI_CS_WEBHOOK_SECRET=...`, and once more with a wrong
key, which must be refused. Assertions are on status codes, response shape and what the comments
under each example promise (`"status":"UP"`, `handoff`), not on the model's wording: the suite runs
the hashing embedder, as the other end-to-end tests do.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, clean_env

ROOT = Path(__file__).resolve().parents[2]
READMES = ("README.md", "README.zh-CN.md")
WEBHOOK_PATH = "/api/v1/customer-service/webhook"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)
STATUS = re.compile(r"\n@@STATUS (\d{3})@@\n")
SERVER_SECRET = re.compile(r"^export AI_CS_WEBHOOK_SECRET='([^']+)'", re.M)
CLIENT_SECRET = re.compile(r"^SECRET='([^']+)'", re.M)
# every curl prints its body, then its status on a line of its own
CURL_WRAPPER = "curl() { command curl -sS -w '\\n@@STATUS %{http_code}@@\\n' \"$@\"; }\n"

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl") and shutil.which("bash")),
    reason="needs curl, openssl and bash, as the README does",
)


@dataclass
class Example:
    command: str  # one curl command, continuation lines joined
    promise: str  # the comments right after it (or at its end): what the README says it returns


def examples_in(block: str) -> list[Example]:
    logical: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        logical.append(line.strip())
    found: list[Example] = []
    for line in logical:
        if line.startswith("curl "):
            comment = re.search(r"\s#\s(.*)$", line)
            found.append(Example(line, comment.group(1) if comment else ""))
        elif line.startswith("#") and found:
            found[-1].promise += " " + line.lstrip("# ")
    return found


def run_block(block: str, server: ServerProcess, cwd: Path) -> list[tuple[int, str]]:
    script = CURL_WRAPPER + block.replace("localhost:8080", f"127.0.0.1:{server.port}")
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=clean_env({}), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"the README block failed ({done.returncode}):\n{block}\n{done.stderr}"
    parts = STATUS.split(done.stdout)
    # [body, status, body, status, ..., trailing]
    return [(int(parts[i + 1]), parts[i]) for i in range(0, len(parts) - 1, 2)]


def check(example: Example, status: int, body_text: str) -> None:
    where = f"README example `{example.command[:90]}`"
    assert status == 200, f"{where}: HTTP {status}: {body_text}"
    body: dict[str, Any] = json.loads(body_text)
    if WEBHOOK_PATH in example.command:
        expected = {"received", "session_id", "message_id", "reply", "intent", "confidence", "handoff"}
        assert expected <= body.keys(), f"{where}: {body}"
        assert body["received"] is True and isinstance(body["reply"], str) and body["reply"], body
        assert 0.0 <= body["confidence"] <= 1.0 and isinstance(body.get("citations"), list), body
    if '"status":"UP"' in example.promise:
        assert body["status"] == "UP", f"{where}: {body}"
    promised = re.search(r'handoff"?\s*:\s*(true|false)', example.promise)
    if promised:
        assert body["handoff"] is (promised.group(1) == "true"), f"{where} promises {promised[0]}: {body}"
        if body["handoff"]:
            assert body["ticket_id"], body


def wait_for_knowledge(server: ServerProcess, timeout: float = 60.0) -> int:
    """The demo KB loads in the background after start-up; the README's answers come from it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        knowledge = httpx.get(f"{server.url}/actuator/health").json()["components"]["knowledge"]
        if knowledge["status"] == "UP" and knowledge["entries"] > 0:
            return int(knowledge["entries"])
        time.sleep(0.2)
    raise AssertionError(f"the demo KB did not load within {timeout}s:\n{server.logs()}")


@pytest.mark.parametrize("readme", READMES)
def test_the_readme_curl_examples_work_as_written(
    readme: str, db_env: dict[str, str], tmp_path: Path
) -> None:
    blocks = [b for b in BASH_BLOCK.findall((ROOT / readme).read_text(encoding="utf-8")) if "curl " in b]
    unsigned = [b for b in blocks if "X-CS-Signature" not in b]
    signed = [b for b in blocks if "X-CS-Signature" in b]
    assert sum(len(examples_in(b)) for b in unsigned) >= 3 and len(signed) == 1, f"{readme}: {blocks}"

    # 1. `make run`: the demo KB and no webhook secret
    env = {k: v for k, v in db_env.items() if k != "AI_CS_WEBHOOK_SECRET"}
    server = ServerProcess(env={**env, "AI_CS_DEMO_KB": "true"}, cwd=tmp_path)
    try:
        server.start()
        assert wait_for_knowledge(server) == 35  # "35 entries", as both READMEs say
        for block in unsigned:
            examples = examples_in(block)
            results = run_block(block, server, tmp_path)
            assert len(results) == len(examples), f"{readme}: {len(results)} responses for {examples}"
            for example, (status, body) in zip(examples, results, strict=True):
                check(example, status, body)
    finally:
        assert server.stop() == 0

    # 2. the same data, restarted with the README's secret; its signed example is accepted
    (block,) = signed
    text = (ROOT / readme).read_text(encoding="utf-8")
    server_secret, client_secret = SERVER_SECRET.search(text), CLIENT_SECRET.search(block)
    assert server_secret and client_secret, f"{readme}: no `export AI_CS_WEBHOOK_SECRET='…'` / `SECRET='…'`"
    assert server_secret.group(1) == client_secret.group(1), f"{readme}: the two secrets differ"
    server = ServerProcess(env={**env, "AI_CS_WEBHOOK_SECRET": server_secret.group(1)}, cwd=tmp_path)
    try:
        server.start()
        (example,) = examples_in(block)
        (result,) = run_block(block, server, tmp_path)
        check(example, *result)
        # a different key is refused, as the comment under the example says
        wrong = block.replace(client_secret.group(0), "SECRET='not-the-secret'")
        ((status, body),) = run_block(wrong, server, tmp_path)
        assert status == 403 and json.loads(body)["error"]["code"] == "CS_AUTH_4034", body
        assert "CS_AUTH_4034" in example.promise
        # and the unsigned examples now get 403 CS_AUTH_4031, as the README says
        for block in unsigned:
            for example, (status, body) in zip(
                examples_in(block), run_block(block, server, tmp_path), strict=True
            ):
                if WEBHOOK_PATH in example.command:
                    assert status == 403 and json.loads(body)["error"]["code"] == "CS_AUTH_4031", body
    finally:
        assert server.stop() == 0
