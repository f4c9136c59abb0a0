"""The knowledge-base dialog engine (contract §9.1): rules → hybrid retrieval → calibrated policy → reply.

The engine is pure: it answers from the :class:`KnowledgeSnapshot` last handed to it
(:meth:`KnowledgeDialog.load`) and never touches the database. ``knowledge/refresher.py`` owns the
knowledge side: it polls the knowledge base's fingerprint, rebuilds the index from the published
entries (reusing the embeddings cached in the database) and loads the new snapshot. The engine answers
at the operator's override threshold when one is set, else at the snapshot's operating point
(``dialog/calibration.py``); the optional LLM is asked only above that same threshold. Embedding runs
in worker threads, never on the event loop; the optional LLM runs in ``analyze``, before any
transaction (the webhook calls ``analyze`` only for a new message in a conversation the bot owns), and
its answer is used only when the faithfulness gate accepted it (docs/llm.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ai_customer_service.dialog import policy, replies
from ai_customer_service.dialog.calibration import OperatingPoint
from ai_customer_service.dialog.embedding import Embedder
from ai_customer_service.dialog.engine import (
    Analysis,
    Decision,
    DecisionKind,
    KnowledgeStatus,
    non_text_decision,
    rule_decision,
)
from ai_customer_service.dialog.index import Candidate, KnowledgeIndex
from ai_customer_service.dialog.llm import LLMClient, Source
from ai_customer_service.dialog.rules import RuleMatch, kb_answer_allowed, match_rules, matches_rule
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.ticket.states import Priority

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
class KnowledgeSnapshot:
    """What the engine answers from: a built index and the entries' full (possibly bilingual) titles.

    Immutable; the refresher hands a new one over whenever the knowledge base changed.
    """

    index: KnowledgeIndex
    titles: Mapping[str, str] = field(default_factory=dict)

    @property
    def operating_point(self) -> OperatingPoint:
        """The point the KB's index was built for (self-calibrated or the fallback)."""
        return self.index.operating_point

    def title(self, entry_id: str, language: str, default: str | None = None) -> str:
        """An entry's title in the customer's language (its full title is kept per snapshot)."""
        return title_in(self.titles.get(entry_id, entry_id if default is None else default), language)

    def citation(self, entry_id: str, language: str, default: str | None = None) -> dict[str, str]:
        return {"id": entry_id, "title": self.title(entry_id, language, default)}


class KnowledgeDialog:
    """The knowledge-base engine (see the module docstring); implements ``DialogEngine``.

    ``answer_threshold``: the operator's override (None: answer at the snapshot's operating point).
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        answer_threshold: float | None = None,
        clarify_threshold: float = policy.DEFAULT_CLARIFY_THRESHOLD,
        max_low_confidence_turns: int = policy.DEFAULT_MAX_LOW_CONFIDENCE_TURNS,
        llm: LLMClient | None = None,
    ) -> None:
        if answer_threshold is not None and not 0.0 <= answer_threshold <= 1.0:
            raise ValueError("answer_threshold must lie in [0, 1]")
        # the other checks (a point below clarify_threshold answers at clarify_threshold)
        policy.Thresholds(1.0, clarify_threshold, max_low_confidence_turns)
        self.embedder = embedder
        self.answer_threshold = answer_threshold
        self.clarify_threshold = clarify_threshold
        self.max_low_confidence_turns = max_low_confidence_turns
        self.llm = llm
        self._snapshot: KnowledgeSnapshot | None = None

    # --- the knowledge it answers from --------------------------------------------------------------

    def load(self, snapshot: KnowledgeSnapshot) -> None:
        """Answer from ``snapshot`` from now on (called by the knowledge refresher)."""
        self._snapshot = snapshot

    @property
    def snapshot(self) -> KnowledgeSnapshot | None:
        return self._snapshot

    def operating_point(self, snapshot: KnowledgeSnapshot | None = None) -> OperatingPoint | None:
        """Where the engine answers on ``snapshot`` (default: the loaded one): the override when
        set, else the snapshot's own point; None before the first snapshot."""
        snapshot = snapshot or self._snapshot
        if snapshot is None:
            return None
        fitted = snapshot.operating_point
        if self.answer_threshold is None:
            return fitted
        # nothing was fitted or measured for an override (the KB's own point: knowledge_status)
        return OperatingPoint(threshold=self.answer_threshold, source="override")

    def thresholds(self, snapshot: KnowledgeSnapshot | None = None) -> policy.Thresholds:
        """The policy's thresholds on ``snapshot`` (default: the loaded one)."""
        point = self.operating_point(snapshot)
        answer = point.threshold if point is not None else policy.DEFAULT_ANSWER_THRESHOLD
        return policy.Thresholds(
            answer_threshold=max(answer, self.clarify_threshold),
            clarify_threshold=self.clarify_threshold,
            max_low_confidence_turns=self.max_low_confidence_turns,
        )

    def knowledge_status(self) -> KnowledgeStatus:
        snapshot = self._snapshot
        if snapshot is None:
            return KnowledgeStatus("LOADING")
        point = self.operating_point(snapshot)
        fitted = snapshot.operating_point if point is not snapshot.operating_point else None
        return KnowledgeStatus("UP", len(snapshot.index), point, fitted)

    def llm_status(self) -> dict[str, Any] | None:
        return self.llm.status() if self.llm is not None else None

    async def aclose(self) -> None:
        if self.llm is not None:
            await self.llm.aclose()

    # --- the DialogEngine port ------------------------------------------------------------------------

    async def analyze(self, text: str, content_type: str) -> Analysis:
        started = time.perf_counter()
        language = detect_language(text)
        if content_type != "text":
            return Analysis(text, content_type, language, None)
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
                and candidates[0].confidence >= self.thresholds(snapshot).answer_threshold
            ):
                generated = await self.llm.answer(
                    text,
                    self._sources(snapshot, candidates, language),
                    (),
                    language,
                    chosen=candidates[0].entry_id,
                )
        latency_ms = (time.perf_counter() - started) * 1000
        return Analysis(text, content_type, language, rule, candidates, latency_ms, generated)

    def _rank(self, index: KnowledgeIndex, text: str) -> list[Candidate]:
        vector = self.embedder.embed_queries([text])[0]
        return index.rank(text, k=5, query_vector=vector)

    @staticmethod
    def _sources(snapshot: KnowledgeSnapshot, candidates: Sequence[Candidate], language: str) -> list[Source]:
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
        outcome = policy.decide(analysis.candidates, low_confidence_streak, self.thresholds(self._snapshot))
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
            or best.confidence < self.thresholds(snapshot).answer_threshold
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

    def _reply(self, analysis: Analysis, outcome: policy.Outcome) -> Decision:
        language = analysis.language
        snapshot = self._snapshot
        confidence = round(float(outcome.confidence), 4)
        if outcome.kind is DecisionKind.ANSWER and outcome.entry_id and snapshot is not None:
            doc = snapshot.index.get(outcome.entry_id)
            generated = analysis.generated
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
        if outcome.kind is DecisionKind.HANDOFF:
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
            "answer_threshold": self.thresholds(snapshot).answer_threshold,
            "operating_point": point.as_dict() if (point := self.operating_point(snapshot)) else None,
            "latency_ms": round(analysis.latency_ms, 2),
        }
