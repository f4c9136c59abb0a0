from dataclasses import dataclass

import pytest

from ai_customer_service.dialog.policy import (
    DecisionKind,
    Outcome,
    Reason,
    Thresholds,
    decide,
)


@dataclass(frozen=True)
class Cand:
    entry_id: str
    confidence: float


T = Thresholds(answer_threshold=0.5, clarify_threshold=0.1, max_low_confidence_turns=2)


def test_answer_when_confident_and_resets_streak() -> None:
    d = decide([Cand("a", 0.9), Cand("b", 0.05)], low_confidence_streak=1, thresholds=T)
    assert d == Outcome(DecisionKind.ANSWER, Reason.KB_MATCH, "a", 0.9, 0)


def test_answer_at_exact_threshold() -> None:
    assert decide([Cand("a", 0.5)], 0, T).kind is DecisionKind.ANSWER


def test_first_low_confidence_clarifies_with_suggestions() -> None:
    cands = [Cand("a", 0.4), Cand("b", 0.3), Cand("c", 0.2), Cand("d", 0.15), Cand("e", 0.01)]
    d = decide(cands, 0, T)
    assert d.kind is DecisionKind.CLARIFY
    assert d.reason is Reason.LOW_CONFIDENCE
    assert d.entry_id is None
    assert d.suggestions == ("a", "b", "c")
    assert d.low_confidence_streak == 1


def test_clarify_drops_weak_suggestions() -> None:
    d = decide([Cand("a", 0.3), Cand("b", 0.05)], 0, T)
    assert d.suggestions == ("a",)


def test_streak_reaching_limit_hands_off() -> None:
    d = decide([Cand("a", 0.2)], 1, T)
    assert d.kind is DecisionKind.HANDOFF
    assert d.reason is Reason.LOW_CONFIDENCE_STREAK
    assert d.low_confidence_streak == 2
    assert d.suggestions == ()


def test_longer_streak_limit() -> None:
    t = Thresholds(max_low_confidence_turns=3)
    assert decide([Cand("a", 0.0)], 1, t).kind is DecisionKind.CLARIFY
    assert decide([Cand("a", 0.0)], 2, t).kind is DecisionKind.HANDOFF


def test_empty_kb_is_low_confidence() -> None:
    first = decide([], 0, T)
    assert first.kind is DecisionKind.CLARIFY
    assert first.reason is Reason.EMPTY_KB
    assert first.suggestions == ()
    assert first.confidence == 0.0
    second = decide([], first.low_confidence_streak, T)
    assert second.kind is DecisionKind.HANDOFF
    assert second.reason is Reason.EMPTY_KB


def test_negative_streak_is_treated_as_zero() -> None:
    assert decide([Cand("a", 0.1)], -5, T).kind is DecisionKind.CLARIFY


def test_default_thresholds_are_valid() -> None:
    t = Thresholds()
    assert 0 <= t.clarify_threshold <= t.answer_threshold <= 1
    assert t.max_low_confidence_turns == 2


@pytest.mark.parametrize(
    ("answer", "clarify", "turns"),
    [(0.3, 0.5, 2), (1.5, 0.1, 2), (0.5, -0.1, 2), (0.5, 0.1, 1)],
)
def test_invalid_thresholds_rejected(answer: float, clarify: float, turns: int) -> None:
    with pytest.raises(ValueError):
        Thresholds(answer_threshold=answer, clarify_threshold=clarify, max_low_confidence_turns=turns)
