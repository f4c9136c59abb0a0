"""Prometheus metrics. One registry per app, so tests and several apps in one process never clash.

With ``AI_CS_HTTP_WORKERS`` > 1 the server processes share one port, so a scrape reaches any one of
them. :func:`enable_multiprocess` (called by the parent before it forks) makes every process write
its values to files in one directory, and ``/metrics`` then reports the whole server: counters and
histograms summed over the processes, pool gauges summed over the live ones, outbox gauges (the
same database-wide value in each) the most recently set value. A ``PROMETHEUS_MULTIPROC_DIR`` set in
the environment of a single-process server is ignored (:func:`use_single_process`): only
:func:`enable_multiprocess` turns multiprocess mode on.
"""

from __future__ import annotations

import os
import tempfile

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_multiprocess_dir: str | None = None


def enable_multiprocess() -> str:
    """Switch this process and the ones it forks next to file-backed values; returns the directory.

    A fresh directory each time (stale files of an earlier run would be counted again). Call before
    any metric is created; the caller removes the directory when the server stops.
    """
    global _multiprocess_dir
    directory = tempfile.mkdtemp(prefix=f"aics-metrics-{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _multiprocess_dir = directory
    return directory


def use_single_process() -> None:
    """In-memory values for a one-process server, even if ``PROMETHEUS_MULTIPROC_DIR`` was inherited
    (prometheus_client would otherwise write to that directory, or fail when it does not exist)."""
    os.environ.pop(MULTIPROC_ENV, None)
    values.ValueClass = values.MutexValue


def process_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    if _multiprocess_dir is not None:
        mark_process_dead(pid, _multiprocess_dir)  # type: ignore[no-untyped-call]


_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the service exposes on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "cs_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "cs_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_errors = Counter(
            "cs_http_errors_total", "Error responses by CS_* code", ["code"], registry=r
        )
        self.webhook_rejections = Counter(
            "cs_webhook_rejections_total", "Rejected inbound webhooks by CS_* code", ["code"], registry=r
        )
        self.webhook_coalesced = Counter(
            "cs_webhook_coalesced_total",
            "Copies of a message in flight answered from the original's record (upstream retries)",
            registry=r,
        )
        self.messages_processed = Counter(
            "cs_messages_processed_total", "Inbound messages processed", ["channel", "outcome"], registry=r
        )
        self.handoffs = Counter("cs_handoffs_total", "Handoffs to a human by reason", ["reason"], registry=r)
        self.ticket_transitions = Counter(
            "cs_ticket_transitions_total", "Ticket transitions by action", ["action"], registry=r
        )
        self.dialog_latency = Histogram(
            "cs_dialog_decision_seconds", "Dialog decision latency", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.llm_failures = Counter(
            "cs_llm_failures_total", "LLM failures by CS_* code", ["code"], registry=r
        )
        # the optional LLM (docs/llm.md): every call's outcome, its latency, why the faithfulness
        # gate rejected an answer, and the circuit breaker (0 closed, 1 half-open, 2 open)
        self.llm_requests = Counter(
            "cs_llm_requests_total",
            "LLM answers by outcome (accepted, rejected, timeout, error, breaker_open)",
            ["outcome"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "cs_llm_request_duration_seconds",
            "LLM call latency (calls actually made)",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0),
            registry=r,
        )
        self.llm_gate_rejections = Counter(
            "cs_llm_gate_rejections_total",
            "LLM answers rejected by the gate, by reason",
            ["reason"],
            registry=r,
        )
        self.llm_breaker_state = Gauge(
            "cs_llm_breaker_state",
            "LLM circuit breaker: 0 closed, 1 half-open, 2 open",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.db_pool_in_use = Gauge(
            "cs_db_pool_connections_in_use",
            "DB connections checked out",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.db_pool_size = Gauge(
            "cs_db_pool_size", "DB connections held by the pool", registry=r, multiprocess_mode="livesum"
        )
        self.outbox_pending = Gauge(
            "cs_outbox_pending_events",
            "Outbox events waiting for delivery",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.outbox_oldest_age = Gauge(
            "cs_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending (not yet delivered, not dead) outbox event",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.outbox_dead = Gauge(
            "cs_outbox_dead_events",
            "Dead-lettered outbox events",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.outbox_unknown_destination = Gauge(
            "cs_outbox_unknown_destination_events",
            "Pending outbox events of a destination this process does not deliver to (left for a "
            "replica that has it configured)",
            ["destination"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.outbox_deliveries = Counter(
            "cs_outbox_deliveries_total",
            "Outbox delivery attempts by outcome (delivered, retry, dead, lost_lease)",
            ["outcome"],
            registry=r,
        )
        # failed authentication and its throttle (http/auth_throttle.py)
        self.auth_failures = Counter(
            "cs_auth_failures_total", "Failed authentications (401, webhook signature 403)", registry=r
        )
        self.auth_blocks = Counter(
            "cs_auth_blocks_total", "Clients blocked after repeated failed authentication", registry=r
        )
        self.auth_throttled = Counter(
            "cs_auth_throttled_total",
            "Requests answered 429 CS_AUTH_4291 while their client was blocked",
            registry=r,
        )
        self.sessions_closed = Counter(
            "cs_sessions_closed_total", "Sessions closed by reason", ["reason"], registry=r
        )

    def exposition(self) -> bytes:
        """The text ``/metrics`` serves: this process's registry, or every process's values."""
        if _multiprocess_dir is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=_multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
