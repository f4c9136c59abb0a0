"""The confidence policy: a pure function from ranked candidates to answer / clarify / handoff.

Rules for sensitive topics and explicit requests for a human run *before* this policy (see
``dialog/rules.py``); they are the only way to hand off on the first message. Here, low confidence
hands off only after ``max_low_confidence_turns`` low-confidence turns in a row.

The answer threshold is the knowledge base's operating point (``dialog/calibration.py``: fitted on the
KB when its index is built, or an operator's override); its one default, :data:`FALLBACK_THRESHOLD`
(0.37, used when a KB is too small to fit its own), is the most cautious confidence cut whose
in-scope accuracy + out-of-scope recall is within 0.02 of the best on the validation split of the
multi-domain out-of-scope proxy
(``bench/quality/multidomain.py``, ``bench/quality/calibrate.py``), with the calibration fitted as
described in ``dialog/index.py``.
``clarify_threshold`` drops suggestions whose confidence is below it (a runner-up's confidence is the
best entry's, scaled by its share of the fused probability); the default 0.0 always offers the
closest three topics, because a clarifying question with options costs the customer little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ai_customer_service.dialog.calibration import FALLBACK_THRESHOLD

# the one answer-threshold default (kept under this name for the bench scripts)
DEFAULT_ANSWER_THRESHOLD = FALLBACK_THRESHOLD
DEFAULT_CLARIFY_THRESHOLD = 0.0
DEFAULT_MAX_LOW_CONFIDENCE_TURNS = 2
MAX_SUGGESTIONS = 3


class RankedCandidate(Protocol):
    """What the policy needs from a retrieval candidate (see ``dialog.index.Candidate``)."""

    @property
    def entry_id(self) -> str: ...

    @property
    def confidence(self) -> float: ...


class DecisionKind(StrEnum):
    """What the bot does with a message (the policy's outcome, and every engine's decision)."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"


class Reason(StrEnum):
    KB_MATCH = "kb_match"
    LOW_CONFIDENCE = "low_confidence"
    LOW_CONFIDENCE_STREAK = "low_confidence_streak"
    EMPTY_KB = "empty_kb"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds on the calibrated confidence in [0, 1]."""

    answer_threshold: float = DEFAULT_ANSWER_THRESHOLD
    clarify_threshold: float = DEFAULT_CLARIFY_THRESHOLD
    max_low_confidence_turns: int = DEFAULT_MAX_LOW_CONFIDENCE_TURNS

    def __post_init__(self) -> None:
        if not 0.0 <= self.clarify_threshold <= self.answer_threshold <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= clarify_threshold <= answer_threshold <= 1")
        if self.max_low_confidence_turns < 2:
            # Contract §9.1: only the rules hand off on the first message.
            raise ValueError("max_low_confidence_turns must be at least 2")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The policy's outcome for one message (the engine turns it into a reply: ``engine.Decision``).

    ``low_confidence_streak`` is the session's new count of consecutive low-confidence turns (0 after
    an answer); the caller stores it on the session.
    """

    kind: DecisionKind
    reason: Reason
    entry_id: str | None
    confidence: float
    low_confidence_streak: int
    suggestions: tuple[str, ...] = field(default=())


def decide(
    candidates: Sequence[RankedCandidate],
    low_confidence_streak: int = 0,
    thresholds: Thresholds | None = None,
) -> Outcome:
    """Decide what to do with a message given its ranked candidates (best first).

    ``low_confidence_streak`` is the number of low-confidence turns in a row *before* this message.
    """
    t = thresholds or Thresholds()
    best = candidates[0] if candidates else None
    confidence = best.confidence if best is not None else 0.0
    if best is not None and confidence >= t.answer_threshold:
        return Outcome(DecisionKind.ANSWER, Reason.KB_MATCH, best.entry_id, confidence, 0)

    streak = max(0, low_confidence_streak) + 1
    reason = Reason.EMPTY_KB if best is None else Reason.LOW_CONFIDENCE
    if streak >= t.max_low_confidence_turns:
        return Outcome(
            DecisionKind.HANDOFF,
            Reason.EMPTY_KB if best is None else Reason.LOW_CONFIDENCE_STREAK,
            None,
            confidence,
            streak,
        )
    suggestions = tuple(
        c.entry_id for c in candidates[:MAX_SUGGESTIONS] if c.confidence >= t.clarify_threshold
    )
    return Outcome(DecisionKind.CLARIFY, reason, None, confidence, streak, suggestions)
