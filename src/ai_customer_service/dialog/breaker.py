"""A circuit breaker for the optional LLM (one per process; no I/O, the clock is injected).

``closed``: every call goes through; ``failure_threshold`` failures in a row (an error, a timeout,
or a call slower than ``slow_call_seconds``) open it.
``open``: no call is made (the customer gets the offline answer at once) until ``cooldown_seconds``
have passed; then the next call is let through as a probe (``half_open``).
``half_open``: exactly one probe in flight; its success closes the breaker, its failure opens it again
for another cool-down. Other calls meanwhile are refused as if it were open.

An answer the faithfulness gate rejects is a success here: the server answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


# the value of the ``cs_llm_breaker_state`` gauge
STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        slow_call_seconds: float = float("inf"),
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown_seconds < 0 or slow_call_seconds <= 0:
            raise ValueError("failure_threshold >= 1, cooldown_seconds >= 0, slow_call_seconds > 0")
        self.failure_threshold = failure_threshold
        self.slow_call_seconds = slow_call_seconds
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self.listeners: list[Callable[[BreakerState], None]] = [on_change] if on_change else []
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            for listener in self.listeners:
                listener(state)

    def allow(self) -> bool:
        """May a call be made now? (In ``half_open``, True only for the one probe.)"""
        if self.state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_seconds:
            self._set(BreakerState.HALF_OPEN)
            self._probing = False
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record(self, *, ok: bool, seconds: float) -> bool:
        """Record a finished call; returns True when it counted as a failure (error or slow)."""
        failed = not ok or seconds >= self.slow_call_seconds
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            if failed:
                self._open()
            else:
                self.consecutive_failures = 0
                self._set(BreakerState.CLOSED)
            return failed
        if not failed:
            self.consecutive_failures = 0
            return False
        self.consecutive_failures += 1
        if self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failure_threshold:
            self._open()
        return True

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)
