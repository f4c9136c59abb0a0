"""The dialog port the webhook uses, and the decisions every engine shares.

Two steps, so that the expensive part never runs inside a database transaction:

* ``analyze(text, content_type)`` — everything that depends only on the message (rules, retrieval);
  may be slow (embeddings), runs before the transaction;
* ``decide(analysis, low_confidence_streak)`` — the cheap, pure policy that also depends on the
  conversation's state, run inside the transaction that holds the session lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ai_customer_service.dialog import replies
from ai_customer_service.dialog.rules import RuleMatch
from ai_customer_service.ticket.states import Priority


class DecisionKind(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"


@dataclass(frozen=True)
class Analysis:
    text: str
    content_type: str
    language: str
    rule: RuleMatch | None
    candidates: tuple[Any, ...] = ()
    latency_ms: float = 0.0


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


class DialogEngine(Protocol):
    async def analyze(self, text: str, content_type: str) -> Analysis: ...

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Decision: ...

    async def explain(self, query: str, *, top_k: int = 5) -> dict[str, Any]: ...


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
