from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.main import create_app

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1/customer-service"


@pytest.fixture
async def make_client(settings: Settings, db: Database) -> AsyncIterator[MakeClient]:
    """An in-process client of an app whose settings are overridden (e.g. ``admin_token=...``)."""
    stack = AsyncExitStack()

    async def make(**overrides: Any) -> httpx.AsyncClient:
        effective = settings.model_copy(update=overrides)
        application = create_app(effective, db=db)
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application)
        client = httpx.AsyncClient(transport=transport, base_url=f"http://testserver{API}")
        return await stack.enter_async_context(client)

    async with stack:
        yield make


@pytest.fixture
async def api(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client()
