"""What tests of the knowledge side share: the operating point's wire fields, and waiting for a
server's knowledge index."""

from __future__ import annotations

import time

import httpx

# the fields of an operating point on the wire (health, /kb/search, eval's output)
POINT_FIELDS = {
    "threshold",
    "source",
    "target_precision",
    "expected_precision",
    "expected_answer_rate",
    "positives",
    "negatives",
}


def wait_for_knowledge(base: str) -> None:
    """The demo KB's index is built (on a loaded machine the first build can outlast start-up)."""
    for _ in range(600):  # bounded: at most about a minute
        health = httpx.get(f"{base}/actuator/health", timeout=5).json()
        if health.get("components", {}).get("knowledge", {}).get("status") == "UP":
            return
        time.sleep(0.1)
    raise AssertionError("the knowledge index was never built")
