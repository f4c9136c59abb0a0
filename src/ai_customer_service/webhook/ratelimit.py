"""Per-customer rate limiting support: a process-local memo of customers known to be over the limit.

The authoritative count lives in the database (messages of the customer's session in the window,
read under the session lock), so the limit holds across any number of processes. This memo only
spares the database: once a customer is over the limit, further messages in the same window are
refused here with no database write at all.
"""

from __future__ import annotations

import time


class BlockedCustomers:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._until: dict[tuple[str, str], float] = {}
        self._max = max_entries

    def retry_after(self, channel: str, open_id: str, now: float | None = None) -> int | None:
        """Seconds to wait when the customer is known to be blocked, else ``None``."""
        key = (channel, open_id)
        until = self._until.get(key)
        if until is None:
            return None
        now = time.monotonic() if now is None else now
        if until <= now:
            del self._until[key]
            return None
        return max(1, int(until - now + 0.999))

    def block(self, channel: str, open_id: str, seconds: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._until) >= self._max:
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= self._max:
                return
        self._until[(channel, open_id)] = now + seconds
