"""Helpers for outbox tests: settings with a platform pointing at a receiver, emitting, draining."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ai_customer_service.config import Settings, load_settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.outbox.events import EventType, emit
from ai_customer_service.outbox.models import OutboxEvent
from ai_customer_service.outbox.worker import OutboxWorker

CALLBACK_SECRET = "cb-secret-never-log-7f3a9c"
PLATFORM = "sub2api"


def platform_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": "ingress-secret",
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": url,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": CALLBACK_SECRET,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_TIMEOUT_MS": "3000",
        "AI_CS_OUTBOX_RETRY_BASE_SECONDS": "0.001",
        "AI_CS_OUTBOX_RETRY_CAP_SECONDS": "0.005",
        "AI_CS_OUTBOX_WORKER_ENABLED": "false",
        **extra,
    }


def outbox_settings(db_env: Mapping[str, str], url: str, **extra: str) -> Settings:
    return load_settings({**db_env, **platform_env(url, **extra)}, env_file=None)


async def emit_one(
    db: Database,
    *,
    session_id: uuid.UUID | None,
    type: EventType = EventType.MESSAGE_RECEIVED,
    destination: str = PLATFORM,
    data: dict[str, Any] | None = None,
) -> uuid.UUID:
    async with db.transaction() as tx:
        return emit(tx, destination=destination, type=type, session_id=session_id, data=data or {})


async def pending_count(db: Database) -> int:
    async with db.transaction() as tx:
        stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == "pending")
        return int((await tx.execute(stmt)).scalar_one())


async def run_until_idle(*workers: OutboxWorker, rounds: int = 400) -> None:
    """Run the workers side by side until nothing is pending (retries are due within milliseconds)."""
    db = workers[0].db
    for _ in range(rounds):
        reports = await asyncio.gather(*(w.run_once() for w in workers))
        if sum(r.claimed for r in reports) == 0:
            if await pending_count(db) == 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("outbox did not drain")


class FakeClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
