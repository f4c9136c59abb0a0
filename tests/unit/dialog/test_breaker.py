"""The LLM circuit breaker with a fake clock."""

from __future__ import annotations

import pytest

from ai_customer_service.dialog.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3,
        slow_call_seconds=2.0,
        cooldown_seconds=30.0,
        clock=clock,
        on_change=changes.append if changes is not None else None,
    )


def test_opens_after_n_consecutive_failures_and_refuses_calls() -> None:
    clock, changes = Clock(), []
    b = breaker(clock, changes)
    for _ in range(2):
        assert b.allow()
        b.record(ok=False, seconds=0.1)
    assert b.state is BreakerState.CLOSED
    assert b.allow()
    b.record(ok=False, seconds=0.1)
    assert b.state is BreakerState.OPEN and changes == [BreakerState.OPEN]
    clock.now += 29.9
    assert not b.allow()


def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    for ok in (False, False, True, False, False):
        assert b.allow()
        b.record(ok=ok, seconds=0.1)
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 2


def test_slow_calls_count_as_failures() -> None:
    b = breaker(Clock())
    for _ in range(3):
        assert b.allow()
        assert b.record(ok=True, seconds=2.5)
    assert b.state is BreakerState.OPEN


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock, changes = Clock(), []
    b = breaker(clock, changes)
    for _ in range(3):
        b.allow()
        b.record(ok=False, seconds=0.1)
    clock.now += 30
    assert b.allow() and b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.record(ok=True, seconds=0.1)
    assert b.state is BreakerState.CLOSED and b.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.allow()
        b.record(ok=False, seconds=0.1)
    clock.now += 30
    assert b.allow()
    b.record(ok=False, seconds=0.1)
    assert b.state is BreakerState.OPEN
    clock.now += 29
    assert not b.allow()
    clock.now += 1
    assert b.allow()


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
