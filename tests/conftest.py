"""Shared fixtures. The whole suite runs against SQLite (default) or PostgreSQL
(``AI_CS_TEST_DATABASE=postgres``); every test gets an empty, migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ai_customer_service.config import Settings, load_settings
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.main import create_app
from tests.support import databases

TEST_SECRET = "test-secret-123"


@pytest.fixture(scope="session")
def backend() -> str:
    return databases.backend()


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("needs PostgreSQL (AI_CS_TEST_DATABASE=postgres)")


@pytest.fixture
async def db_env(backend: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Environment variables selecting a fresh, empty database for this test."""
    env = {
        "AI_CS_RUNTIME_ENV": "test",
        "AI_CS_DATA_DIR": str(tmp_path / "var"),
        "AI_CS_WEBHOOK_SECRET": TEST_SECRET,
        "AI_CS_LOG_LEVEL": "warning",
        # the hashing embedder keeps the suite fast; tests marked for the real model override it
        "AI_CS_EMBEDDING_MODEL": "hashing",
        "AI_CS_KB_REFRESH_INTERVAL_SECONDS": "0.5",
    }
    if backend == "postgres":
        name = await databases.create_database()
        env["AI_CS_POSTGRES_ENABLED"] = "true"
        env["AI_CS_POSTGRES_DSN"] = databases.dsn_for(name)
        try:
            yield env
        finally:
            await databases.drop_database(name)
    else:
        yield env


@pytest.fixture
def settings(db_env: dict[str, str]) -> Settings:
    return load_settings(db_env, env_file=None)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db=db)
    async with application.router.lifespan_context(application):
        await application.state.ctx.knowledge.refresh()  # the bot starts from a built (empty) index
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
