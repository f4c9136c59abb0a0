"""The hello-world baseline: a tiny FastAPI app on the same stack as the service (uvicorn, uvloop,
httptools, no access log). ``POST /hello`` reads the JSON body and answers a small JSON object.

Usage: ``python bench/webhook/hello_app.py <port> [processes]`` (binds 127.0.0.1 only). With
``processes`` > 1 it forks that many uvicorn processes sharing one listening socket, as the service
does with ``AI_CS_HTTP_WORKERS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/hello")
async def hello(request: Request) -> dict[str, object]:
    body = await request.body()
    return {"received": True, "bytes": len(body)}


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ok": True}


def _serve(sock: socket.socket) -> None:
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    if processes == 1:
        _serve(sock)
        return
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                _serve(sock)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in children:
        os.wait()


if __name__ == "__main__":
    main()
