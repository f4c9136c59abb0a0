"""The dialog port the webhook uses, and the decisions every engine shares.

Two steps, so that the expensive part never runs inside a database transaction:

* ``analyze(text, content_type)`` — everything that depends only on the message (rules, retrieval);
  may be slow (embeddings), runs before the transaction;
* ``decide(analysis, low_confidence_streak)`` — the cheap, pure policy that also depends on the
  conversation's state, run inside the transaction that holds the session lock.

The engine owns no database access: the knowledge it answers from is handed to it
(``knowledge/refresher.py`` builds the snapshot and loads it). Callers use the :class:`DialogEngine`
protocol only (webhook, widget, console, evaluation, health, ``/kb/search``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ai_customer_service.dialog import replies
from ai_customer_service.dialog.calibration import OperatingPoint
from ai_customer_service.dialog.llm import Generated
from ai_customer_service.dialog.policy import DecisionKind
from ai_customer_service.dialog.rules import RuleMatch
from ai_customer_service.ticket.states import Priority

__all__ = [
    "Analysis",
    "Decision",
    "DecisionKind",
    "DialogEngine",
    "KnowledgeStatus",
    "non_text_decision",
    "rule_decision",
]


@dataclass(frozen=True)
class Analysis:
    text: str
    content_type: str
    language: str
    rule: RuleMatch | None
    candidates: tuple[Any, ...] = ()
    latency_ms: float = 0.0
    # the model's answer and the gate's verdict (None when the model was not asked)
    generated: Generated | None = None


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reply: str
    reason: str
    intent: str | None = None
    confidence: float | None = None
    citations: list[dict[str, str]] = field(default_factory=list)
    priority: Priority | None = None
    low_confidence: bool = False
    suggestions: list[str] = field(default_factory=list)
    # the knowledge-base entry whose answer the reply carries: an answer, or a rule handoff that
    # also gives the customer the entry's answer while they wait (None otherwise)
    entry: str | None = None

    @property
    def handoff(self) -> bool:
        return self.kind is DecisionKind.HANDOFF

    def record(self, latency_ms: float) -> dict[str, Any]:
        """What is stored with the bot's reply so a supervisor can see why it answered."""
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "intent": self.intent,
            "confidence": self.confidence,
            "entry": self.entry,
            "priority": self.priority.value if self.priority else None,
            "latency_ms": round(latency_ms, 2),
        }


@dataclass(frozen=True, slots=True)
class KnowledgeStatus:
    """The knowledge an engine answers from: ``LOADING`` until its first snapshot, then ``UP`` with
    the number of published entries and the operating point it answers at."""

    status: Literal["LOADING", "UP"]
    entries: int = 0
    operating_point: OperatingPoint | None = None
    # the KB's own point (self-calibrated or fallback) when an override replaces it
    fitted_operating_point: OperatingPoint | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.status == "UP":
            out["entries"] = self.entries
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point.as_dict()
        if self.fitted_operating_point is not None:
            out["fitted_operating_point"] = self.fitted_operating_point.as_dict()
        return out


class DialogEngine(Protocol):
    """What every caller of the bot uses (no ``isinstance``/``getattr`` on engines)."""

    async def analyze(self, text: str, content_type: str) -> Analysis: ...

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Decision: ...

    async def explain(self, query: str, *, top_k: int = 5) -> dict[str, Any]: ...

    def knowledge_status(self) -> KnowledgeStatus | None:
        """The knowledge component of ``/actuator/health`` (None: an engine without a KB)."""
        ...

    def llm_status(self) -> dict[str, Any] | None:
        """The ``llm`` component of ``/actuator/health`` (None: no LLM configured)."""
        ...

    async def aclose(self) -> None:
        """Release what the engine holds (the LLM's HTTP client)."""
        ...


def non_text_decision(language: str) -> Decision:
    return Decision(
        DecisionKind.CLARIFY, replies.text(language, "non_text"), reason="non_text", intent="clarify"
    )


def rule_decision(match: RuleMatch, language: str) -> Decision:
    return Decision(
        DecisionKind.HANDOFF,
        replies.text(language, "handoff"),
        reason=f"rule:{match.rule}",
        intent=match.rule,
        confidence=1.0,
        priority=Priority.P1,
    )
