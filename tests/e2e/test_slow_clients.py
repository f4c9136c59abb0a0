"""Slow clients are cut (issue #12, item 4): 1,000 loopback sockets trickling a byte a second — half
their headers, or a body — do not stop health checks or a signed webhook, and the server closes them
after the header timeout or once their body falls below the minimum rate.

Before: uvicorn timed out only idle keep-alive connections, so every trickling socket stayed open
for as long as the client liked."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.support.server import ServerProcess
from tests.support.webhooks import WEBHOOK, message, signed

HEADER_TRICKLERS = 900
BODY_TRICKLERS = 100
MAX_ROUNDS = 30  # one byte a second per socket, at most this many seconds


@pytest.fixture
def server(db_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        **db_env,
        "AI_CS_HTTP_HEADER_TIMEOUT_SECONDS": "3",
        "AI_CS_HTTP_BODY_MIN_BYTES_PER_SECOND": "100",
        "AI_CS_LOG_LEVEL": "info",
    }
    proc = ServerProcess(env=env, cwd=tmp_path)
    try:
        yield proc.start()
    finally:
        proc.stop()


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(first)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset), after any 408 it sent."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _answers(server: ServerProcess, open_id: str) -> None:
    assert httpx.get(f"{server.url}/actuator/health/live", timeout=15).status_code == 200
    assert httpx.get(f"{server.url}/actuator/health/ready", timeout=15).status_code == 200
    raw, headers = signed(message("hello", open_id=open_id), TEST_SECRET)
    response = httpx.post(f"{server.url}{WEBHOOK}", content=raw, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def test_a_thousand_trickling_sockets_are_cut_and_the_service_answers(server: ServerProcess) -> None:
    webhook_head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n{"
    ).encode()
    open_sockets: dict[socket.socket, bytes] = {}
    try:
        for _ in range(HEADER_TRICKLERS):
            open_sockets[_open(server.port, b"GET /actuator/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")] = (
                b"a"
            )
        for _ in range(BODY_TRICKLERS):
            open_sockets[_open(server.port, webhook_head)] = b" "
        # all 1,000 are open and trickling: the service still answers
        _answers(server, "during-flood-1")
        closed: set[socket.socket] = set()
        for round_number in range(MAX_ROUNDS):
            for sock, byte in open_sockets.items():
                if sock in closed:
                    continue
                if _closed_by_server(sock):
                    closed.add(sock)
                    continue
                try:
                    sock.send(byte)
                except OSError:
                    closed.add(sock)
            if round_number == 1:
                _answers(server, "during-flood-2")
            if len(closed) == len(open_sockets):
                break
            time.sleep(1.0)
        assert len(closed) == len(open_sockets), f"{len(open_sockets) - len(closed)} slow sockets still open"
        _answers(server, "after-flood")
    finally:
        for sock in open_sockets:
            sock.close()
    assert "slow clients cut" in server.logs()


def test_a_prompt_client_on_a_keep_alive_connection_is_not_cut(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=15) as client:
        for _ in range(3):
            assert client.get("/actuator/health/live").status_code == 200
            time.sleep(1.0)  # idle within the keep-alive timeout, then the next request on the same socket
