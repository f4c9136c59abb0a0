"""A local OpenAI-compatible chat-completions server for the LLM tests.

Modes: ``ok`` (a faithful answer: the first sentence of entry [1] as the prompt gave it, cited),
``swapped`` (entry [2]'s first sentence cited ``[2]``, then entry [1]'s cited ``[1]``), ``slow``
(the ``ok`` answer after ``delay`` seconds), ``fail`` (HTTP 500), ``uncited`` (an answer without a
marker), ``script`` (``content`` and ``finish_reason`` as set by the test). ``requests`` holds every
request body received, so a test can count the model calls.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def faithful_answer(messages: list[dict[str, Any]], number: int = 1) -> str:
    """The first line of entry [number]'s answer in the system prompt, with its marker."""
    pattern = rf"^\[{number}\] [^\n]*\n(.+?)(?:\n\n\[\d+\] |\Z)"
    match = re.search(pattern, str(messages[0]["content"]), re.S | re.M)
    first = match.group(1).strip().splitlines()[0] if match else "?"
    return f"{first.rstrip('.。')} [{number}]" + ("。" if re.search(r"[\u4e00-\u9fff]", first) else ".")


class FakeLLM:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 2.0
        self.content = ""
        self.finish_reason: str | None = "stop"
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                fake.requests.append(body)
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "fail":
                    self._send(500, {"error": {"message": "boom"}})
                    return
                finish = "stop"
                if fake.mode == "script":
                    text, finish = fake.content, fake.finish_reason
                elif fake.mode == "swapped":
                    text = f"{faithful_answer(body['messages'], 2)} {faithful_answer(body['messages'])}"
                elif fake.mode == "uncited":
                    text = "Something unrelated."
                else:
                    text = faithful_answer(body["messages"])
                choice = {"message": {"role": "assistant", "content": text}, "finish_reason": finish}
                self._send(200, {"choices": [choice]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                out = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def script(self, content: str, finish_reason: str | None = "stop") -> None:
        self.mode, self.content, self.finish_reason = "script", content, finish_reason

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def system_prompt(self) -> str:
        return str(self.requests[-1]["messages"][0]["content"])

    def start(self) -> FakeLLM:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
