"""The PostgreSQL pool keeps the connections a burst needs and trims the surplus once demand is low."""

from __future__ import annotations

import pytest

from ai_customer_service.config import Settings
from ai_customer_service.db import engine as engine_module
from ai_customer_service.db.engine import Database

pytestmark = pytest.mark.usefixtures("postgres_only")


async def _burst(db: Database, n: int) -> None:
    conns = [await db.engine.connect() for _ in range(n)]
    for conn in conns:
        await conn.close()


async def test_a_burst_keeps_its_connections_within_the_grace_period(settings: Settings) -> None:
    db = Database(settings.model_copy(update={"postgres_max_idle_conns": 2, "postgres_max_open_conns": 10}))
    try:
        await _burst(db, 8)
        assert db.engine.pool.checkedin() == 8  # returned, not closed: the next burst reuses them
    finally:
        await db.dispose()


async def test_the_surplus_is_closed_once_demand_stayed_low(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_GRACE_SECONDS", -1.0)  # no grace: trim at once
    db = Database(settings.model_copy(update={"postgres_max_idle_conns": 2, "postgres_max_open_conns": 10}))
    try:
        await _burst(db, 8)
        await _burst(db, 1)
        assert db.engine.pool.checkedin() <= 3
    finally:
        await db.dispose()
