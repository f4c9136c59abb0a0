"""The pure dialog engine: it answers from the snapshot handed to it, at the override threshold when
one is set, else at the snapshot's operating point; the LLM is asked above that same threshold."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ai_customer_service.dialog import policy
from ai_customer_service.dialog.calibration import FALLBACK_THRESHOLD, OperatingPoint
from ai_customer_service.dialog.embedding import FakeEmbedder
from ai_customer_service.dialog.engine import DecisionKind, DialogEngine
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex
from ai_customer_service.dialog.knowledge_dialog import KnowledgeDialog, KnowledgeSnapshot
from ai_customer_service.dialog.llm import Generated, Outcome

DOCS = [
    KBDoc("reset", "Reset your password", "Click Forgot password.", ("how do I reset my password",)),
    KBDoc("invoice", "Download invoices", "Billing, then Invoices.", ("where is my invoice",)),
]
DIALOG = Path(__file__).parents[3] / "src" / "ai_customer_service" / "dialog"


def snapshot(threshold: float, source: Any = "self-calibrated") -> KnowledgeSnapshot:
    index = KnowledgeIndex.build(DOCS, FakeEmbedder())
    index.operating_point = OperatingPoint(
        threshold,
        source,
        target_precision=0.9,
        expected_precision=0.93,
        expected_answer_rate=0.8,
        positives=40,
    )
    return KnowledgeSnapshot(
        index, {"reset": "Reset your password --- 重置密码", "invoice": "Download invoices"}
    )


async def test_before_a_snapshot_the_engine_is_loading_and_asks_to_wait() -> None:
    engine = KnowledgeDialog(embedder=FakeEmbedder())
    assert engine.knowledge_status().as_dict() == {"status": "LOADING"}
    decision = engine.decide(await engine.analyze("reset my password", "text"), low_confidence_streak=0)
    assert decision.reason == "index_loading" and decision.kind is DecisionKind.CLARIFY


async def test_it_answers_at_the_snapshots_operating_point() -> None:
    engine = KnowledgeDialog(embedder=FakeEmbedder())
    engine.load(snapshot(0.0))
    analysis = await engine.analyze("how do I reset my password", "text")
    assert engine.decide(analysis, low_confidence_streak=0).entry == "reset"

    engine.load(snapshot(1.0))
    gibberish = await engine.analyze("qqq zzz", "text")
    assert gibberish.candidates[0].confidence < 1.0
    assert engine.decide(gibberish, low_confidence_streak=0).kind is DecisionKind.CLARIFY
    status = engine.knowledge_status()
    assert status.status == "UP" and status.entries == 2
    assert status.operating_point is not None and status.operating_point.source == "self-calibrated"
    assert status.as_dict()["operating_point"]["positives"] == 40
    assert "fitted_operating_point" not in status.as_dict()


async def test_an_override_wins_over_the_fitted_point_and_says_so() -> None:
    engine = KnowledgeDialog(embedder=FakeEmbedder(), answer_threshold=0.0)
    engine.load(snapshot(1.0))
    analysis = await engine.analyze("qqq zzz", "text")
    assert engine.decide(analysis, low_confidence_streak=0).kind is DecisionKind.ANSWER
    point = engine.knowledge_status().operating_point
    assert point is not None and (point.threshold, point.source) == (0.0, "override")
    assert point.expected_precision is None and point.positives == 0  # nothing fitted for an override
    shown = engine.knowledge_status().as_dict()
    assert (
        shown["fitted_operating_point"]["source"] == "self-calibrated"
    )  # the KB's own point, for comparison
    assert shown["fitted_operating_point"]["positives"] == 40
    explained = await engine.explain("qqq zzz")
    assert explained["operating_point"]["source"] == "override" and explained["answer_threshold"] == 0.0


class RecordingLLM:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def answer(self, text: str, *args: Any, **kwargs: Any) -> Generated:
        self.asked.append(text)
        return Generated(Outcome.REJECTED, "", (), reason="unsupported")

    def status(self) -> dict[str, Any]:
        return {"status": "UP"}

    async def aclose(self) -> None:
        pass


async def test_the_llm_is_asked_only_above_the_same_threshold() -> None:
    llm = RecordingLLM()
    engine = KnowledgeDialog(embedder=FakeEmbedder(), llm=llm)  # type: ignore[arg-type]
    engine.load(snapshot(1.0))
    analysis = await engine.analyze("qqq zzz", "text")
    assert analysis.candidates[0].confidence < 1.0 and analysis.generated is None
    assert llm.asked == []
    engine.load(snapshot(0.0))
    analysis = await engine.analyze("qqq zzz", "text")
    assert llm.asked == ["qqq zzz"] and analysis.generated is not None
    assert engine.llm_status() == {"status": "UP"}


def test_the_engine_satisfies_the_protocol_and_the_defaults_are_one() -> None:
    engine: DialogEngine = KnowledgeDialog(embedder=FakeEmbedder())
    assert engine.llm_status() is None
    assert policy.DEFAULT_ANSWER_THRESHOLD == policy.Thresholds().answer_threshold == FALLBACK_THRESHOLD


def test_dialog_does_not_import_knowledge() -> None:
    """The engine is handed its knowledge; the knowledge side imports dialog, never the reverse."""
    offenders = []
    for path in sorted(DIALOG.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.startswith("ai_customer_service.knowledge") for n in names):
                offenders.append(path.name)
    assert offenders == []
