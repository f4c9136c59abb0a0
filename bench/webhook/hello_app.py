"""The hello-world baseline: a tiny FastAPI app on the same stack as the service (uvicorn, uvloop,
httptools, no access log). ``POST /hello`` reads the JSON body and answers a small JSON object.

Usage: ``python bench/webhook/hello_app.py <port>`` (binds 127.0.0.1 only).
"""

from __future__ import annotations

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


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
