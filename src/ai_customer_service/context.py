"""What a running app holds: settings, database, metrics, services, the live-event hub, workers, and
its draining flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.engine import DialogEngine
from ai_customer_service.knowledge.refresher import KnowledgeRefresher
from ai_customer_service.live import LiveHub
from ai_customer_service.metrics import Metrics
from ai_customer_service.uow import Store
from ai_customer_service.webhook.rejections import RejectionLog
from ai_customer_service.webhook.service import IngestService
from ai_customer_service.workers import Workers


@dataclass
class AppContext:
    settings: Settings
    db: Database
    metrics: Metrics
    dialog: DialogEngine
    ingest: IngestService
    store: Store  # the database with the event publisher: units of work and reads
    rejections: RejectionLog
    live: LiveHub
    workers: Workers = field(default_factory=Workers)
    # builds the knowledge snapshots the dialog answers from (None when a dialog was passed in)
    knowledge: KnowledgeRefresher | None = None
    draining: bool = False
