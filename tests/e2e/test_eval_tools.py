"""``eval``'s operator tools on the tiny fixtures (in process, hashing embedder): --report, --sweep,
--self-test, and the operating point in the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_customer_service.config import Settings
from ai_customer_service.knowledge.evaluation import run_eval
from tests.support.knowledge import POINT_FIELDS

FIXTURES = Path(__file__).parent.parent / "fixtures"
KB = FIXTURES / "tiny_kb.jsonl"
CASES = FIXTURES / "tiny_cases.jsonl"
REPORT_FIELDS = {
    "text",
    "language",
    "expected",
    "decision",
    "reason",
    "entry",
    "confidence",
    "correct",
    "rule",
    "top",
}


async def test_report_writes_one_json_line_per_case(settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    result = await run_eval(settings, KB, CASES, report=report)
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(cases) == result["cases"]
    for line, case in zip(lines, cases, strict=True):
        assert set(line) == REPORT_FIELDS
        assert (line["text"], line["expected"]) == (case["text"], case.get("expected"))
        assert line["decision"] in ("answer", "clarify", "handoff")
        assert line["correct"] == (line["entry"] == line["expected"])
        assert 1 <= len(line["top"]) <= 3 and set(line["top"][0]) == {"entry", "confidence", "score"}
        assert line["language"] in ("en", "zh")
    assert set(result["operating_point"]) >= POINT_FIELDS
    assert result["answer_threshold"] == result["operating_point"]["threshold"]
    assert result["mode"] == "cases" and isinstance(result["confusions"], list)


async def test_sweep_gives_the_metrics_at_every_threshold_with_the_point_marked(settings: Settings) -> None:
    result = await run_eval(settings, KB, CASES, with_sweep=True)
    rows = result["sweep"]
    thresholds = [row["threshold"] for row in rows]
    assert thresholds == sorted(thresholds) and thresholds[0] == 0.0 and thresholds[-1] == 1.0
    marked = [row for row in rows if "operating_point" in row]
    point = result["operating_point"]
    assert [row["threshold"] for row in marked][:1] == [point["threshold"]]
    assert marked[0]["operating_point"] == point["source"]
    for row in rows:
        assert {"in_scope_accuracy", "out_of_scope_recall", "answer_precision", "answer_rate"} <= set(row)
    # at the marked point the sweep agrees with the run itself
    for key in ("in_scope_accuracy", "out_of_scope_recall", "answer_precision", "answer_rate"):
        assert marked[0][key] == result[key]
    # answering everything at 0: no out-of-scope question is declined
    assert rows[0]["out_of_scope_recall"] == 0.0 and rows[0]["answer_rate"] == 1.0


async def test_self_test_asks_the_kbs_own_questions_held_out(settings: Settings, tmp_path: Path) -> None:
    report = tmp_path / "self.jsonl"
    result = await run_eval(settings, KB, None, self_test=True, report=report, with_sweep=True)
    questions = sum(
        len(json.loads(line)["questions"]) for line in KB.read_text(encoding="utf-8").splitlines()
    )
    assert result["mode"] == "self-test" and result["folds"] == 4  # 4 questions per entry: 4 folds
    # every example question once in scope (its own entry's fold) and once as a near miss
    assert result["in_scope_cases"] == questions and result["out_of_scope_cases"] == questions
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert {line["held_out"] for line in lines} == {"question", "entry"}
    assert all(isinstance(line["fold"], int) for line in lines)
    assert len(result["sweep"]) >= 21
    marked = next(row for row in result["sweep"] if "operating_point" in row)
    assert marked["threshold"] == result["operating_point"]["threshold"]
    for key in ("in_scope_accuracy", "out_of_scope_recall", "answer_precision", "answer_rate"):
        assert marked[key] == result[key]  # the folds answer at the whole KB's point


async def test_cases_or_self_test_but_not_both(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="self-test"):
        await run_eval(settings, KB, CASES, self_test=True)
    with pytest.raises(ValueError, match="self-test"):
        await run_eval(settings, KB, None)
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"id": "a", "title": "A", "answer": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="example questions"):
        await run_eval(settings, bare, None, self_test=True)
