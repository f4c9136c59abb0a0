"""Auditing rejected webhooks without a database write per rejection.

Each rejection is counted in ``/metrics`` and logged at once; for the audit trail they are aggregated
in memory and flushed periodically as at most one ``cs_audit_logs`` row per code and interval, so a
flood of bad requests costs a bounded number of writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ai_customer_service.audit import repository as audit
from ai_customer_service.db.engine import Database
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.values import rfc3339

log = get_logger(__name__)
_SAMPLES = 5


@dataclass
class RejectionLog:
    metrics: Metrics
    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def record(self, code: str, *, request_id: str, path: str, reason: str) -> None:
        self.metrics.webhook_rejections.labels(code).inc()
        self.counts[code] += 1
        sample = self.samples.setdefault(code, [])
        if len(sample) < _SAMPLES:
            sample.append(request_id)
        log.warning("webhook rejected", code=code, path=path, reason=reason)

    async def flush(self, db: Database) -> int:
        """Write one audit row per code seen since the last flush; returns how many rows."""
        if not self.counts:
            return 0
        counts, samples, since = self.counts, self.samples, self.since
        self.counts, self.samples, self.since = Counter(), {}, datetime.now(UTC)
        try:
            async with db.transaction() as tx:
                for code, count in sorted(counts.items()):
                    audit.record(
                        tx,
                        object_type="webhook",
                        object_id="inbound",
                        action="rejected",
                        actor_type="system",
                        code=code,
                        details={
                            "count": count,
                            "since": rfc3339(since),
                            "sample_request_ids": samples[code],
                        },
                    )
        except Exception:
            self.counts.update(counts)  # keep them for the next flush
            raise
        return len(counts)
