"""Test databases: a fresh SQLite file per test, or a fresh PostgreSQL database per test session.

``AI_CS_TEST_DATABASE=postgres`` selects PostgreSQL; ``AI_CS_TEST_POSTGRES_DSN`` (default: the local
trust-auth server, database ``test``) is the admin connection used to create and drop the databases.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"


def backend() -> str:
    value = os.environ.get("AI_CS_TEST_DATABASE", "sqlite").lower()
    if value not in ("sqlite", "postgres"):
        raise RuntimeError("AI_CS_TEST_DATABASE must be sqlite or postgres")
    return value


def admin_dsn() -> str:
    return os.environ.get("AI_CS_TEST_POSTGRES_DSN", DEFAULT_ADMIN_DSN)


def dsn_for(database: str) -> str:
    parts = urlsplit(admin_dsn())
    return urlunsplit(parts._replace(path=f"/{database}"))


def _plain(dsn: str) -> str:
    return dsn.split("?", 1)[0]


async def create_database(prefix: str = "aics_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_plain(admin_dsn()))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(_plain(admin_dsn()))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
