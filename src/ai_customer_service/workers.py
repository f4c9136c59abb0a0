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
    def __init__(self) -> None:
        self._jobs: list[_Periodic] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, name: str, job: Job) -> None:
        """Run ``job`` every ``seconds`` once started; an error is logged and the loop goes on."""
        self._jobs.append(_Periodic(name, seconds, job))

    def start(self) -> None:
        for periodic in self._jobs:
            self._tasks.append(asyncio.create_task(self._loop(periodic), name=f"worker:{periodic.name}"))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(self._tasks, timeout=grace_seconds)
        self._tasks.clear()

    @staticmethod
    async def _loop(periodic: _Periodic) -> None:
        while True:
            try:
                await periodic.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("background job failed", job=periodic.name, exc_info=exc)
            await asyncio.sleep(periodic.interval)
