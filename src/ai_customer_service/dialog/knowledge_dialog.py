"""The knowledge-base dialog engine (contract §9.1): rules → hybrid retrieval → calibrated policy → reply.

It keeps an in-memory :class:`KnowledgeIndex` of the *published* entries and rebuilds it whenever
the knowledge base's fingerprint changes (polled by a background job every few seconds, on every
process), reusing the embeddings cached in the database. Embedding and index work run in worker
threads, never on the event loop; the optional LLM runs in ``analyze``, before any transaction (the
webhook calls ``analyze`` only for a new message in a conversation the bot owns), and its answer is
used only when the faithfulness gate accepted it (docs/llm.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ai_customer_service.db.engine import Database
from ai_customer_service.dialog import policy, replies
from ai_customer_service.dialog.embedding import CachedEmbedder, PrefixedEmbedder
from ai_customer_service.dialog.engine import (
    Analysis,
    Decision,
    DecisionKind,
    non_text_decision,
    rule_decision,
)
from ai_customer_service.dialog.index import Candidate, KBDoc, KnowledgeIndex
from ai_customer_service.dialog.llm import Generated, LLMClient, Source
from ai_customer_service.dialog.rules import RuleMatch, kb_answer_allowed, match_rules, matches_rule
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.knowledge import service as knowledge
from ai_customer_service.knowledge.vectors import DatabaseVectorStore
from ai_customer_service.logs import get_logger
from ai_customer_service.ticket.states import Priority

log = get_logger(__name__)

ANSWER_SEPARATOR = "\n---\n"


TITLE_SEPARATOR = " --- "


def _pick(parts: list[str], language: str) -> str:
    for part in parts:
        if detect_language(part) == language:
            return part
    return parts[0]


def answer_in(answer: str, language: str) -> str:
    """Pick the customer's language from a bilingual answer: versions separated by a ``---`` line."""
    parts = [p.strip() for p in answer.replace("\r\n", "\n").split(ANSWER_SEPARATOR) if p.strip()]
    return _pick(parts, language) if len(parts) > 1 else answer.strip()


def title_parts(title: str) -> list[str]:
    """A title's language versions, written ``Create an account --- 注册账号`` (one part if not)."""
    return [p.strip() for p in title.split(TITLE_SEPARATOR) if p.strip()] or [title.strip()]


def title_in(title: str, language: str) -> str:
    """The customer's language version of a (possibly bilingual) title."""
    return _pick(title_parts(title), language)


@dataclass(frozen=True)
class _Snapshot:
    index: KnowledgeIndex
    fingerprint: tuple[int, str]
    titles: dict[str, str] = field(default_factory=dict)

    def title(self, entry_id: str, language: str, default: str | None = None) -> str:
        """An entry's title in the customer's language (its full title is kept per snapshot)."""
        return title_in(self.titles.get(entry_id, entry_id if default is None else default), language)

    def citation(self, entry_id: str, language: str, default: str | None = None) -> dict[str, str]:
        return {"id": entry_id, "title": self.title(entry_id, language, default)}


@dataclass(frozen=True)
class KnowledgeAnalysis(Analysis):
    # the model's answer and the gate's verdict (None when the model was not asked)
    generated: Generated | None = None


class KnowledgeDialog:
    def __init__(
        self,
        *,
        db: Database,
        embedder: PrefixedEmbedder,
        thresholds: policy.Thresholds,
        llm: LLMClient | None = None,
        vector_db: Database | None = None,
    ) -> None:
        self.db = db
        self.vector_db = vector_db or db
        self.embedder = embedder
        self.thresholds = thresholds
        self.llm = llm
        self._snapshot: _Snapshot | None = None
        self._refresh_lock = asyncio.Lock()

    # --- index lifecycle --------------------------------------------------------------------------

    @property
    def index(self) -> KnowledgeIndex | None:
        return self._snapshot.index if self._snapshot else None

    async def refresh(self) -> bool:
        """Rebuild the index when the knowledge base changed; True when it was rebuilt."""
        async with self._refresh_lock:
            fingerprint = await knowledge.fingerprint(self.db)
            if self._snapshot is not None and self._snapshot.fingerprint == fingerprint:
                return False
            entries = await knowledge.published_entries(self.db)
            docs = []
            for e in entries:
                # a bilingual title: the first version is the title, the others also count as questions
                first, *others = title_parts(e.title)
                docs.append(
                    KBDoc(
                        id=e.key,
                        title=first,
                        answer=e.answer,
                        questions=tuple(dict.fromkeys((*(e.questions or ()), *others))),
                        locale=e.locale,
                        tags=tuple(e.tags or ()),
                    )
                )
            store = DatabaseVectorStore(self.vector_db, asyncio.get_running_loop())
            cached = CachedEmbedder(self.embedder, store, cache_queries=True)
            started = time.perf_counter()
            index = await asyncio.to_thread(KnowledgeIndex.build, docs, cached)
            self._snapshot = _Snapshot(index, fingerprint, {e.key: e.title for e in entries})
            log.info(
                "knowledge index built",
                entries=len(docs),
                seconds=round(time.perf_counter() - started, 2),
                new_vectors=store.written,
            )
            return True

    # --- the DialogEngine port ------------------------------------------------------------------------

    async def analyze(self, text: str, content_type: str) -> KnowledgeAnalysis:
        started = time.perf_counter()
        language = detect_language(text)
        if content_type != "text":
            return KnowledgeAnalysis(text, content_type, language, None)
        rule = match_rules(text)
        candidates: tuple[Candidate, ...] = ()
        generated = None
        snapshot = self._snapshot
        # retrieval runs for sensitive topics too: their rule always hands off, but a confident
        # entry's answer still goes to the customer while they wait (never an LLM text on those
        # topics); a request for a person gets the handoff alone, so it skips retrieval
        wanted = rule is None or kb_answer_allowed(rule.rule)
        if wanted and snapshot is not None and len(snapshot.index):
            candidates = tuple(await asyncio.to_thread(self._rank, snapshot.index, text))
            if (
                rule is None
                and self.llm is not None
                and candidates
                and candidates[0].confidence >= self.thresholds.answer_threshold
            ):
                generated = await self.llm.answer(
                    text,
                    self._sources(snapshot, candidates, language),
                    (),
                    language,
                    chosen=candidates[0].entry_id,
                )
        latency_ms = (time.perf_counter() - started) * 1000
        return KnowledgeAnalysis(text, content_type, language, rule, candidates, latency_ms, generated)

    def _rank(self, index: KnowledgeIndex, text: str) -> list[Candidate]:
        vector = self.embedder.embed_queries([text])[0]
        return index.rank(text, k=5, query_vector=vector)

    @staticmethod
    def _sources(snapshot: _Snapshot, candidates: Sequence[Candidate], language: str) -> list[Source]:
        """The chosen entry and the runners-up, in the customer's language only."""
        sources = []
        for c in candidates[:3]:
            doc = snapshot.index.get(c.entry_id)
            if doc is not None:
                title = snapshot.title(doc.id, language, doc.title)
                sources.append(Source(doc.id, title, answer_in(doc.answer, language)))
        return sources

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Decision:
        if analysis.content_type != "text":
            return non_text_decision(analysis.language)
        if analysis.rule is not None:
            return self._rule_handoff(analysis, analysis.rule)
        if self._snapshot is None:
            # the first index build has not finished (e.g. right after start-up): ask the customer
            # to wait, and do not count it as a low-confidence turn (no spurious handoffs)
            return Decision(
                DecisionKind.CLARIFY,
                replies.text(analysis.language, "index_loading"),
                reason="index_loading",
                intent="clarify",
                confidence=0.0,
            )
        outcome = policy.decide(analysis.candidates, low_confidence_streak, self.thresholds)
        return self._reply(analysis, outcome)

    def _rule_handoff(self, analysis: Analysis, rule: RuleMatch) -> Decision:
        """A rule's P1 handoff, with the entry's answer first when the KB has one on that topic.

        "What is your refund policy?" matches the refund rule, so a person follows up, and the
        customer reads the refund-policy entry meanwhile instead of only "please wait". Only for
        sensitive topics (an explicit request for a person gets the handoff alone), and the best
        entry must be confident *and* be about the rule's topic: its title or example questions
        match the rule (not merely its answer), so a stolen card is not answered with a
        payment-troubleshooting entry that mentions fraud filters.
        """
        handoff = rule_decision(rule, analysis.language)
        snapshot = self._snapshot
        best = analysis.candidates[0] if analysis.candidates else None
        if (
            not kb_answer_allowed(rule.rule)
            or snapshot is None
            or best is None
            or best.confidence < self.thresholds.answer_threshold
        ):
            return handoff
        doc = snapshot.index.get(best.entry_id)
        if doc is None or not matches_rule(rule.rule, "\n".join((doc.title, *doc.questions))):
            return handoff
        language = analysis.language
        return replace(
            handoff,
            reply=f"{answer_in(doc.answer, language)}\n\n{handoff.reply}",
            citations=[snapshot.citation(doc.id, language, doc.title)],
            entry=doc.id,
        )

    def _reply(self, analysis: Analysis, outcome: policy.Decision) -> Decision:
        language = analysis.language
        snapshot = self._snapshot
        confidence = round(float(outcome.confidence), 4)
        if outcome.kind is policy.DecisionKind.ANSWER and outcome.entry_id and snapshot is not None:
            doc = snapshot.index.get(outcome.entry_id)
            generated = getattr(analysis, "generated", None)
            if doc is not None:
                # the gate accepted it, and it cites the chosen entry; every cited entry must still
                # be published (the index may have changed since), else [n] would point nowhere
                if (
                    generated is not None
                    and generated.accepted
                    and doc.id in generated.cited
                    and all(snapshot.index.get(c) is not None for c in generated.cited)
                ):
                    cited = list(generated.cited)
                    return Decision(
                        DecisionKind.ANSWER,
                        generated.text,
                        reason="kb_match_llm",
                        intent=doc.id,
                        entry=doc.id,
                        confidence=confidence,
                        citations=[snapshot.citation(c, language) for c in cited],
                    )
                return Decision(
                    DecisionKind.ANSWER,
                    answer_in(doc.answer, language),
                    reason=outcome.reason.value,
                    intent=doc.id,
                    entry=doc.id,
                    confidence=confidence,
                    citations=[snapshot.citation(doc.id, language, doc.title)],
                )
        if outcome.kind is policy.DecisionKind.HANDOFF:
            return Decision(
                DecisionKind.HANDOFF,
                replies.text(language, "low_confidence_handoff"),
                reason=outcome.reason.value,
                intent="handoff",
                confidence=confidence,
                priority=Priority.P2,
                low_confidence=True,
            )
        titles = [snapshot.title(s, language) for s in outcome.suggestions] if snapshot else []
        lines = [replies.text(language, "low_confidence")]
        if titles:
            lines.append(replies.text(language, "suggestions"))
            lines.extend(f"- {title}" for title in titles)
        lines.append(replies.text(language, "offer_human"))
        return Decision(
            DecisionKind.CLARIFY,
            "\n".join(lines),
            reason=outcome.reason.value,
            intent="clarify",
            confidence=confidence,
            citations=[],
            low_confidence=True,
            suggestions=list(outcome.suggestions),
        )

    async def explain(self, query: str, *, top_k: int = 5) -> dict[str, Any]:
        """What the bot would do with ``query`` on a fresh conversation, with the scores."""
        analysis = await self.analyze(query, "text")
        decision = self.decide(analysis, low_confidence_streak=0)
        snapshot = self._snapshot
        return {
            "query": query,
            "language": analysis.language,
            "rule": analysis.rule.rule if analysis.rule else None,
            "candidates": [
                {
                    "id": c.entry_id,
                    "title": snapshot.titles.get(c.entry_id, c.entry_id) if snapshot else c.entry_id,
                    "confidence": round(c.confidence, 4),
                    "score": round(c.score, 4),
                    "components": {k: round(v, 4) for k, v in c.components.items()},
                }
                for c in analysis.candidates[:top_k]
            ],
            "decision": {
                "kind": decision.kind.value,
                "reason": decision.reason,
                "intent": decision.intent,
                "entry": decision.entry,
                "confidence": decision.confidence,
                "suggestions": decision.suggestions,
            },
            "citations": decision.citations,
            "reply": decision.reply,
            "answer_threshold": self.thresholds.answer_threshold,
            "latency_ms": round(analysis.latency_ms, 2),
        }
