"""The operator tools of ``eval``: report lines, sweep grid, confusions, self-test folds (pure parts)."""

from __future__ import annotations

from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.knowledge.evaluation import (
    CaseResult,
    confusion_summary,
    near_miss_folds,
    report_line,
    self_test_folds,
    sweep_thresholds,
    worst_confusions,
)


def test_a_report_line_has_every_field_an_operator_needs() -> None:
    result = CaseResult(
        "invoice",
        "pricing",
        3.0,
        text="where is my bill",
        language="en",
        decision="answer",
        reason="kb_match",
        confidence=0.81,
        top=(("pricing", 0.81, 12.345678), ("invoice", 0.1, 9.0), ("refunds", 0.01, 1.0)),
    )
    line = report_line(result)
    assert line == {
        "text": "where is my bill",
        "language": "en",
        "expected": "invoice",
        "decision": "answer",
        "reason": "kb_match",
        "entry": "pricing",
        "confidence": 0.81,
        "correct": False,
        "rule": None,
        "top": [
            {"entry": "pricing", "confidence": 0.81, "score": 12.3457},
            {"entry": "invoice", "confidence": 0.1, "score": 9.0},
            {"entry": "refunds", "confidence": 0.01, "score": 1.0},
        ],
    }
    folded = report_line(CaseResult(None, None, 1.0, fold=2, held_out="entry"))
    assert (folded["fold"], folded["held_out"], folded["correct"]) == (2, "entry", True)


def test_the_sweep_grid_holds_the_steps_and_the_marked_points() -> None:
    grid = sweep_thresholds([0.37, 0.612])
    assert grid[0] == 0.0 and grid[-1] == 1.0 and 0.05 in grid and 0.95 in grid
    assert 0.37 in grid and 0.612 in grid and grid == sorted(set(grid))
    assert len(grid) == 21 + 2


def test_worst_confusions_rank_pairs_by_how_often_the_wrong_entry_ranks_first() -> None:
    def case(expected: str | None, first: str, answered: str | None) -> CaseResult:
        return CaseResult(expected, answered, 1.0, top=((first, 0.5, 1.0),))

    results = [
        case("a", "b", "b"),
        case("a", "b", None),
        case("a", "a", "a"),
        case("c", "b", "b"),
        case(None, "a", "a"),  # out of scope: not a confusion between entries
    ]
    confusions = worst_confusions(results)
    assert confusions == [
        {"expected": "a", "confused_with": "b", "ranked_first": 2, "answered_wrongly": 1, "questions": 3},
        {"expected": "c", "confused_with": "b", "ranked_first": 1, "answered_wrongly": 1, "questions": 1},
    ]
    text = "\n".join(confusion_summary(confusions))
    assert "a -> b: ranked first for 2 of 3 questions, answered wrongly 1 times" in text
    assert "no confused" in confusion_summary([])[0]


def test_self_test_folds_ask_every_question_once_and_keep_titles_and_answers() -> None:
    docs = [
        KBDoc("a", "A", "answer a", tuple(f"a{i}" for i in range(7))),
        KBDoc("b", "B", "answer b", ("b0",)),
    ]
    folds = self_test_folds(docs, 5)
    asked = [(c.text, c.expected) for _, held in folds for c in held]
    assert sorted(asked) == sorted([*((f"a{i}", "a") for i in range(7)), ("b0", "b")])
    for kept, held in folds:
        assert [d.id for d in kept] == ["a", "b"] and all(d.answer for d in kept)
        for c in held:  # the fold's index never holds the question it asks
            assert c.text not in next(d for d in kept if d.id == c.expected).questions


def test_near_miss_folds_hold_whole_entries_out_as_out_of_scope() -> None:
    docs = [KBDoc(x, x.upper(), f"answer {x}", (f"{x}0", f"{x}1")) for x in "abc"]
    folds = near_miss_folds(docs, 5)  # at most one fold per entry
    assert len(folds) == 3
    for kept, held in folds:
        assert len(kept) == 2 and all(c.expected is None for c in held)
        assert {c.text[0] for c in held}.isdisjoint({d.id for d in kept})
    assert near_miss_folds(docs[:1], 5) == []
