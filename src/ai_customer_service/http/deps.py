"""FastAPI dependencies shared by the routers.

The dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in its thread
pool, which costs a thread hop per request. ``context_of`` / ``request_id_of`` are the same lookups
for code that already holds the request.
"""

from __future__ import annotations

from typing import cast

from fastapi import Request

from ai_customer_service.context import AppContext


def context_of(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


async def app_context(request: Request) -> AppContext:
    return context_of(request)


async def request_id(request: Request) -> str:
    return request_id_of(request)
