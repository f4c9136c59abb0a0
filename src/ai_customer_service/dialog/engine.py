"""The dialog port the webhook uses, and the rules-only engine.

Two steps, so that the expensive part never runs inside a database transaction:

* ``analyze(text, content_type)`` — everything that depends only on the message (rules, retrieval);
  may be slow (embeddings), runs before the transaction;
* ``decide(analysis, low_confidence_streak)`` — the cheap, pure policy that also depends on the
  conversation's state, run inside the transaction that holds the session lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ai_customer_service.dialog import replies
from ai_customer_service.dialog.language import detect_language
from ai_customer_service.dialog.rules import RuleMatch, match_rules
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
            "priority": self.priority.value if self.priority else None,
            "latency_ms": round(latency_ms, 2),
        }


class DialogEngine(Protocol):
    async def analyze(self, text: str, content_type: str) -> Analysis: ...

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Decision: ...


def non_text_decision(language: str) -> Decision:
    return Decision(DecisionKind.CLARIFY, replies.text(language, "non_text"), reason="non_text")


def rule_decision(match: RuleMatch, language: str) -> Decision:
    return Decision(
        DecisionKind.HANDOFF,
        replies.text(language, "handoff"),
        reason=f"rule:{match.rule}",
        intent=match.rule,
        confidence=1.0,
        priority=Priority.P1,
    )


class RulesDialog:
    """Rules first (hand off with P1), otherwise a configured FAQ-style fallback answer."""

    def __init__(self, fallback_reply: str | None = None) -> None:
        self.fallback_reply = fallback_reply

    async def analyze(self, text: str, content_type: str) -> Analysis:
        started = time.perf_counter()
        language = detect_language(text)
        rule = match_rules(text) if content_type == "text" else None
        return Analysis(text, content_type, language, rule, latency_ms=(time.perf_counter() - started) * 1000)

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Decision:
        if analysis.content_type != "text":
            return non_text_decision(analysis.language)
        if analysis.rule is not None:
            return rule_decision(analysis.rule, analysis.language)
        reply = self.fallback_reply or replies.text(analysis.language, "fallback")
        return Decision(DecisionKind.ANSWER, reply, reason="fallback", intent="faq_fallback")
