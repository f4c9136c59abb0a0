"""Background workers that run inside the server process: periodic jobs with a clean stop.

Workers coordinate only through the database, so any number of processes may run them side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ai_customer_service.logs import get_logger

log = get_logger(__name__)

Job = Callable[[], Awaitable[object]]


@dataclass
class _Periodic:
    name: str
    interval: float
    job: Job


class Workers:
    """Periodic jobs. ``stop()`` lets a running job finish (up to a grace period) before cancelling,
    so no job is cut off in the middle of a database transaction."""

    def __init__(self) -> None:
        self._jobs: list[_Periodic] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: asyncio.Event | None = None

    def every(self, seconds: float, name: str, job: Job) -> None:
        """Run ``job`` every ``seconds`` once started; an error is logged and the loop goes on."""
        self._jobs.append(_Periodic(name, seconds, job))

    def start(self) -> None:
        self._stopping = asyncio.Event()
        for periodic in self._jobs:
            self._tasks.append(
                asyncio.create_task(self._loop(periodic, self._stopping), name=f"worker:{periodic.name}")
            )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                with contextlib.suppress(Exception):
                    await asyncio.wait(pending, timeout=1.0)
        self._tasks.clear()

    @staticmethod
    async def _loop(periodic: _Periodic, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await periodic.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("background job failed", job=periodic.name, exc_info=exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=periodic.interval)
