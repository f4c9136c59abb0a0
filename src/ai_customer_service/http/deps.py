"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from ai_customer_service.context import AppContext


def app_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))
