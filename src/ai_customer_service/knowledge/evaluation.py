"""``ai-customer-service eval``: the webhook's dialog engine on labelled cases (contract §9.5).

A fresh temporary store holds the imported KB; embeddings are cached in a persistent file under
``AI_CS_DATA_DIR`` so a second run on the same KB recomputes nothing. Each case is a fresh
conversation: ``answered`` means the reply carried an entry's answer; a clarifying question or a
bare handoff is a decline. The handoff rules run first, as in the webhook: a sensitive message (a
refund, a hacked account, a complaint) or a request for a person is always handed off with P1, and
the reply carries the best entry's answer only when the KB answers it confidently (that counts as
answered with that entry). ``rule_handoffs`` and ``in_scope_rule_handoffs`` count the rule matches.

With ``--llm`` it scores what the customer receives: ``llm_calls`` (calls made), ``llm_answers`` (replies
whose text came from the model, i.e. accepted by the faithfulness gate), ``llm_rejected`` (by gate
reason), ``llm_failures`` (timeout, error, breaker_open), and for the accepted answers the gate's
support (``llm_support_mean``/``_min``: the weakest sentence's share of content tokens found in the
cited entries) and whether they cite the expected entry (``llm_answers_correct``).

Operator tools (docs/evaluation.md, "Operator tools"): ``report`` writes one JSON line per case;
``sweep`` adds the metrics at every threshold (0.05 steps and the operating point, marked);
``self_test`` needs no cases file: each entry's example questions are split into folds, and per fold
the index is rebuilt without that fold's questions, which are then asked. Every run reports the
operating point the KB answers at and the entry pairs the ranking confuses most.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.dialog.embedding import CachedEmbedder
from ai_customer_service.dialog.engine import Analysis, Decision
from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.dialog.knowledge_dialog import KnowledgeDialog, KnowledgeSnapshot
from ai_customer_service.knowledge import formats, importing
from ai_customer_service.knowledge import service as knowledge
from ai_customer_service.knowledge.formats import EvalCase
from ai_customer_service.knowledge.refresher import (
    KnowledgeRefresher,
    build_engine,
    build_snapshot,
    stored_docs,
)
from ai_customer_service.knowledge.vectors import DatabaseVectorStore
from ai_customer_service.values import percentile

DEFAULT_FOLDS = 5
SWEEP_STEP = 0.05
TOP_CANDIDATES = 3
WORST_PAIRS = 5


@dataclass(frozen=True)
class CaseResult:
    expected: str | None
    answered: str | None  # the entry answered with, or None when the bot declined
    latency_ms: float
    rule: str | None = None  # the handoff rule that matched, if any
    llm: str | None = None  # the LLM outcome (accepted, rejected, timeout, ...), None if not asked
    llm_reason: str | None = None  # the gate's rejection reason or the error kind
    llm_support: float | None = None  # the gate's weakest-sentence support (accepted answers)
    llm_latency_ms: float | None = None
    llm_cited: tuple[str, ...] = ()
    # what --report writes (see report_line)
    text: str = ""
    language: str = ""
    decision: str = ""
    reason: str = ""
    confidence: float | None = None
    top: tuple[tuple[str, float, float], ...] = ()  # (entry, confidence, fused score), best first
    fold: int | None = None  # --self-test: the fold whose index did not hold this question
    held_out: str | None = None  # --self-test: "question" (in scope) or "entry" (a near miss)


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) in milliseconds, rounded; 0.0 without values."""
    return round(percentile(sorted(values), q / 100), 2) if values else 0.0


def compute_metrics(results: Sequence[CaseResult]) -> dict[str, Any]:
    in_scope = [r for r in results if r.expected is not None]
    out_scope = [r for r in results if r.expected is None]
    answered = [r for r in results if r.answered is not None]
    correct = [r for r in answered if r.answered == r.expected]
    latencies = [r.latency_ms for r in results]

    def ratio(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "cases": len(results),
        "in_scope_cases": len(in_scope),
        "out_of_scope_cases": len(out_scope),
        "in_scope_accuracy": ratio(sum(1 for r in in_scope if r.answered == r.expected), len(in_scope)),
        "out_of_scope_recall": ratio(sum(1 for r in out_scope if r.answered is None), len(out_scope)),
        "answer_precision": ratio(len(correct), len(answered)),
        "answer_rate": ratio(len(answered), len(results)),
        "rule_handoffs": sum(1 for r in results if r.rule is not None),
        "in_scope_rule_handoffs": sum(1 for r in in_scope if r.rule is not None),
        "latency_ms_p50": _percentile(latencies, 50),
        "latency_ms_p95": _percentile(latencies, 95),
    }


def compute_llm_metrics(results: Sequence[CaseResult]) -> dict[str, Any]:
    """What the model contributed to the replies (see the module docstring)."""
    asked = [r for r in results if r.llm is not None]
    accepted = [r for r in asked if r.llm == "accepted"]
    rejected: dict[str, int] = {}
    failures: dict[str, int] = {}
    for r in asked:
        if r.llm == "rejected":
            rejected[str(r.llm_reason)] = rejected.get(str(r.llm_reason), 0) + 1
        elif r.llm != "accepted":
            failures[str(r.llm)] = failures.get(str(r.llm), 0) + 1
    supports = [r.llm_support for r in accepted if r.llm_support is not None]
    latencies = [r.llm_latency_ms for r in asked if r.llm_latency_ms is not None and r.llm != "breaker_open"]
    return {
        "llm_asked": len(asked),
        "llm_calls": sum(1 for r in asked if r.llm != "breaker_open"),
        "llm_answers": len(accepted),
        "llm_answers_correct": sum(1 for r in accepted if r.answered == r.expected),
        "llm_rejected": dict(sorted(rejected.items())),
        "llm_failures": dict(sorted(failures.items())),
        "llm_support_mean": round(statistics.fmean(supports), 4) if supports else None,
        "llm_support_min": round(min(supports), 4) if supports else None,
        "llm_latency_ms_p50": _percentile(latencies, 50),
        "llm_latency_ms_p95": _percentile(latencies, 95),
    }


def report_line(result: CaseResult) -> dict[str, Any]:
    """One case as ``--report`` writes it (one JSON object a line)."""
    line: dict[str, Any] = {
        "text": result.text,
        "language": result.language,
        "expected": result.expected,
        "decision": result.decision,
        "reason": result.reason,
        "entry": result.answered,
        "confidence": result.confidence,
        "correct": result.answered == result.expected,
        "rule": result.rule,
        "top": [
            {"entry": entry, "confidence": round(conf, 4), "score": round(score, 4)}
            for entry, conf, score in result.top
        ],
    }
    if result.fold is not None:
        line["fold"] = result.fold
        line["held_out"] = result.held_out
    if result.llm is not None:
        line["llm"] = result.llm
    return line


def sweep_thresholds(marked: Sequence[float], step: float = SWEEP_STEP) -> list[float]:
    """0, step, ..., 1 and the marked thresholds, ascending."""
    grid = {round(i * step, 4) for i in range(round(1 / step) + 1)}
    return sorted(grid | {round(t, 4) for t in marked})


def worst_confusions(results: Sequence[CaseResult], limit: int = WORST_PAIRS) -> list[dict[str, Any]]:
    """The entry pairs the ranking confuses most: in-scope questions whose best-ranked entry is
    another entry (``count``), and how many of those the bot answered with the wrong entry."""
    asked: Counter[str] = Counter()
    ranked: Counter[tuple[str, str]] = Counter()
    answered: Counter[tuple[str, str]] = Counter()
    for r in results:
        if r.expected is None:
            continue
        asked[r.expected] += 1
        if r.top and r.top[0][0] != r.expected:
            ranked[(r.expected, r.top[0][0])] += 1
        if r.answered is not None and r.answered != r.expected:
            answered[(r.expected, r.answered)] += 1
    pairs = sorted(set(ranked) | set(answered), key=lambda p: (-ranked[p], -answered[p], p[0], p[1]))[:limit]
    return [
        {
            "expected": expected,
            "confused_with": other,
            "ranked_first": ranked[(expected, other)],
            "answered_wrongly": answered[(expected, other)],
            "questions": asked[expected],
        }
        for expected, other in pairs
    ]


def confusion_summary(confusions: Sequence[dict[str, Any]]) -> list[str]:
    """Human-readable lines for the worst-confused pairs (what to fix in the KB first)."""
    if not confusions:
        return ["no confused entry pairs: every in-scope question ranked its own entry first"]
    lines = ["worst-confused entry pairs (expected -> ranked first instead):"]
    for c in confusions:
        lines.append(
            f"  {c['expected']} -> {c['confused_with']}: ranked first for {c['ranked_first']} of "
            f"{c['questions']} questions, answered wrongly {c['answered_wrongly']} times"
        )
    lines.append(
        "  fix: make the two entries' titles and example questions distinct, add questions that "
        "say what differs, or merge the entries"
    )
    return lines


@dataclass(frozen=True)
class _Asked:
    """One case as the engine saw it: the snapshot it was ranked on, for the sweep."""

    case: EvalCase
    analysis: Analysis
    snapshot: KnowledgeSnapshot
    fold: int | None = None
    held_out: str | None = None


def _result(asked: _Asked, decision: Decision, elapsed_ms: float) -> CaseResult:
    analysis = asked.analysis
    result = CaseResult(
        asked.case.expected,
        decision.entry,  # the entry whose answer the customer got, if any
        elapsed_ms,
        analysis.rule.rule if analysis.rule is not None else None,
        text=asked.case.text,
        language=analysis.language,
        decision=decision.kind.value,
        reason=decision.reason,
        confidence=decision.confidence,
        top=tuple(
            (c.entry_id, float(c.confidence), float(c.score)) for c in analysis.candidates[:TOP_CANDIDATES]
        ),
        fold=asked.fold,
        held_out=asked.held_out,
    )
    generated = analysis.generated
    if generated is not None:
        # the model's text reached the customer only if the decision used it
        used = decision.reason == "kb_match_llm"
        result = replace(
            result,
            llm=generated.outcome.value if used or not generated.accepted else "unused",
            llm_reason=generated.reason,
            llm_support=generated.support,
            llm_latency_ms=generated.latency_ms,
            llm_cited=generated.cited,
        )
    return result


async def _ask(
    engine: KnowledgeDialog,
    cases: Sequence[EvalCase],
    out: list[tuple[_Asked, CaseResult]],
    fold: int | None = None,
    held_out: str | None = None,
) -> None:
    snapshot = engine.snapshot
    assert snapshot is not None
    for case in cases:
        t0 = time.perf_counter()
        analysis = await engine.analyze(case.text, "text")
        decision = engine.decide(analysis, low_confidence_streak=0)
        elapsed = (time.perf_counter() - t0) * 1000
        asked = _Asked(case, analysis, snapshot, fold, held_out)
        out.append((asked, _result(asked, decision, elapsed)))


def self_test_folds(docs: Sequence[KBDoc], folds: int) -> list[tuple[list[KBDoc], list[EvalCase]]]:
    """Each entry's example questions dealt round-robin into ``folds`` folds: per fold, the KB
    without that fold's questions, and those questions as cases expecting their entry. Every
    question is asked exactly once; an entry keeps its title and answer in every fold."""
    out = []
    for fold in range(folds):
        kept: list[KBDoc] = []
        held: list[EvalCase] = []
        for doc in docs:
            stay = tuple(q for i, q in enumerate(doc.questions) if i % folds != fold)
            held.extend(EvalCase(q, doc.id) for i, q in enumerate(doc.questions) if i % folds == fold)
            kept.append(replace(doc, questions=stay))
        if held:
            out.append((kept, held))
    return out


def near_miss_folds(docs: Sequence[KBDoc], folds: int) -> list[tuple[list[KBDoc], list[EvalCase]]]:
    """Entries dealt round-robin into ``folds`` folds and held out whole: per fold, the KB without
    that fold's entries, and their example questions as out-of-scope cases (near misses: questions
    about the KB's domain that it no longer answers). Needs at least two entries."""
    out: list[tuple[list[KBDoc], list[EvalCase]]] = []
    folds = min(folds, len(docs))
    if folds < 2:
        return out
    for fold in range(folds):
        kept = [d for i, d in enumerate(docs) if i % folds != fold]
        held = [EvalCase(q, None) for i, d in enumerate(docs) if i % folds == fold for q in d.questions]
        if held:
            out.append((kept, held))
    return out


def sweep(
    engine: KnowledgeDialog, asked: Sequence[_Asked], thresholds: Sequence[float], marks: Mapping[float, str]
) -> list[dict[str, Any]]:
    """The metrics at each threshold, from the same rankings (decide is pure and cheap)."""
    rows = []
    for t in thresholds:
        at = KnowledgeDialog(
            embedder=engine.embedder,
            answer_threshold=t,
            clarify_threshold=min(engine.clarify_threshold, t),
            max_low_confidence_turns=engine.max_low_confidence_turns,
        )
        results = []
        for a in asked:
            at.load(a.snapshot)
            results.append(_result(a, at.decide(a.analysis, low_confidence_streak=0), 0.0))
        m = compute_metrics(results)
        row: dict[str, Any] = {
            "threshold": t,
            "in_scope_accuracy": m["in_scope_accuracy"],
            "out_of_scope_recall": m["out_of_scope_recall"],
            "answer_precision": m["answer_precision"],
            "answer_rate": m["answer_rate"],
        }
        if round(t, 4) in marks:
            row["operating_point"] = marks[round(t, 4)]
        rows.append(row)
    return rows


async def _self_test(
    engine: KnowledgeDialog,
    refresher: KnowledgeRefresher,
    cache: Database,
    stored: Sequence[KBDoc],
    folds: int,
    out: list[tuple[_Asked, CaseResult]],
) -> int:
    """Ask the KB's own questions, each of an index rebuilt without it (see the module docstring);
    returns the number of in-scope folds."""
    embedder = CachedEmbedder(
        refresher.embedder, DatabaseVectorStore(cache, asyncio.get_running_loop()), cache_queries=True
    )
    plans = {"question": self_test_folds(stored, folds), "entry": near_miss_folds(stored, folds)}
    # every fold answers at the threshold the whole KB answers at (what the operator runs), so the
    # run and its --sweep row at that threshold agree
    point = engine.operating_point()
    assert point is not None
    tester = KnowledgeDialog(
        embedder=engine.embedder,
        answer_threshold=point.threshold,
        clarify_threshold=engine.clarify_threshold,
        max_low_confidence_turns=engine.max_low_confidence_turns,
        llm=engine.llm,
    )
    for held_out, plan in plans.items():
        for fold, (kept, held) in enumerate(plan):
            snapshot = await asyncio.to_thread(
                build_snapshot, kept, embedder, target_precision=refresher.target_precision
            )
            tester.load(snapshot)
            await _ask(tester, held, out, fold, held_out)
    return len(plans["question"])


async def run_eval(
    settings: Settings,
    kb_path: Path,
    cases_path: Path | None,
    *,
    use_llm: bool = False,
    report: Path | None = None,
    with_sweep: bool = False,
    self_test: bool = False,
    folds: int = DEFAULT_FOLDS,
) -> dict[str, Any]:
    """Evaluate the KB in ``kb_path`` on ``cases_path``, or on its own questions (``self_test``)."""
    from ai_customer_service.metrics import Metrics

    if (cases_path is None) == (not self_test):
        raise ValueError("give either a cases file (--cases) or --self-test")
    if folds < 2:
        raise ValueError("--folds must be at least 2")
    docs = importing.load_file(kb_path)
    if self_test and not any(doc.questions for doc in docs):
        raise ValueError(f"{kb_path}: --self-test needs entries with example questions (none has any)")
    cases = formats.load_cases(cases_path) if cases_path is not None else []
    known = {doc.id for doc in docs}
    unknown = sorted({c.expected for c in cases if c.expected is not None and c.expected not in known})
    if unknown:  # a typo would silently count as a miss
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise ValueError(f"{cases_path}: expected entry ids not in {kb_path}: {shown}")
    cache_settings = settings.model_copy(update={"postgres_enabled": False})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asked: list[tuple[_Asked, CaseResult]] = []
    fold_count = 0
    with tempfile.TemporaryDirectory(prefix="aics-eval-") as tmp:
        store_settings = settings.model_copy(
            update={
                "postgres_enabled": False,
                "data_dir": Path(tmp),
                "llm_base_url": settings.llm_base_url if use_llm else "",
            }
        )
        store = Database(store_settings)
        cache = Database(cache_settings.model_copy(update={"data_dir": settings.data_dir / "eval-cache"}))
        engine: KnowledgeDialog | None = None
        try:
            await upgrade(store.engine)
            await upgrade(cache.engine)
            await knowledge.import_entries(store, docs, actor_id="eval")
            engine, refresher = build_engine(store_settings, store, Metrics(), vector_db=cache)
            started = time.perf_counter()
            await refresher.refresh()  # the KB as the webhook answers from it
            build_seconds = time.perf_counter() - started
            full = engine.snapshot
            assert full is not None
            if not self_test:
                await _ask(engine, cases, asked)
            else:
                stored = stored_docs(await knowledge.published_entries(store))
                fold_count = await _self_test(engine, refresher, cache, stored, folds, asked)
        finally:
            if engine is not None:
                await engine.aclose()
            await store.dispose()
            await cache.dispose()
    results = [r for _, r in asked]
    if report is not None:
        with report.open("w", encoding="utf-8") as fh:
            for r in results:
                fh.write(json.dumps(report_line(r), ensure_ascii=False) + "\n")
    point = engine.operating_point(full)
    assert point is not None
    out = compute_metrics(results)
    if use_llm and settings.llm_base_url:
        out.update(compute_llm_metrics(results))
    out.update(
        {
            "mode": "self-test" if self_test else "cases",
            "kb_entries": len(docs),
            "index_build_seconds": round(build_seconds, 2),
            "answer_threshold": point.threshold,
            "operating_point": point.as_dict(),
            "fitted_operating_point": full.operating_point.as_dict() if point.source == "override" else None,
            "embedding_model": settings.embedding_model,
            "llm": bool(use_llm and settings.llm_base_url),
            "confusions": worst_confusions(results),
        }
    )
    if self_test:
        out["folds"] = fold_count
    if with_sweep:
        marks: dict[float, str] = {round(point.threshold, 4): point.source}
        fitted = full.operating_point
        if fitted.threshold != point.threshold:  # an override: also mark the KB's own point
            marks.setdefault(round(fitted.threshold, 4), fitted.source)
        out["sweep"] = sweep(engine, [a for a, _ in asked], sweep_thresholds(list(marks)), marks)
    return out
