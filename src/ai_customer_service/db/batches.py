"""Deleting a backlog in short transactions (the retention jobs)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.db.engine import Database


async def delete_in_batches(
    db: Database,
    delete_batch: Callable[[AsyncSession], Awaitable[int]],
    *,
    batch: int,
    time_budget_seconds: float,
) -> int:
    """Run ``delete_batch`` (which deletes at most ``batch`` rows and returns how many) in one
    transaction after another, so a large backlog never holds locks for long, until a batch comes back
    short or ``time_budget_seconds`` have passed (the job's next run goes on). Returns the total."""
    deadline = time.monotonic() + time_budget_seconds
    total = 0
    while True:
        async with db.transaction() as tx:
            removed = await delete_batch(tx)
        total += removed
        if removed < batch or time.monotonic() > deadline:
            return total
