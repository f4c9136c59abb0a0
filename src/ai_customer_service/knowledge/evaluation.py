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
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.knowledge import formats, importing
from ai_customer_service.knowledge import service as knowledge


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


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


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


async def run_eval(
    settings: Settings, kb_path: Path, cases_path: Path, *, use_llm: bool = False
) -> dict[str, Any]:
    from ai_customer_service.http.metrics import Metrics
    from ai_customer_service.main import build_dialog

    docs = importing.load_file(kb_path)
    cases = formats.load_cases(cases_path)
    known = {doc.id for doc in docs}
    unknown = sorted({c.expected for c in cases if c.expected is not None and c.expected not in known})
    if unknown:  # a typo would silently count as a miss
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise ValueError(f"{cases_path}: expected entry ids not in {kb_path}: {shown}")
    cache_settings = settings.model_copy(update={"postgres_enabled": False})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        try:
            await upgrade(store.engine)
            await upgrade(cache.engine)
            await knowledge.import_entries(store, docs, actor_id="eval")
            dialog = build_dialog(store_settings, store, Metrics())
            dialog.vector_db = cache
            started = time.perf_counter()
            await dialog.refresh()
            build_seconds = time.perf_counter() - started
            results = []
            for case in cases:
                t0 = time.perf_counter()
                analysis = await dialog.analyze(case.text, "text")
                decision = dialog.decide(analysis, low_confidence_streak=0)
                elapsed = (time.perf_counter() - t0) * 1000
                answered = decision.entry  # the entry whose answer the customer got, if any
                rule = analysis.rule.rule if analysis.rule is not None else None
                result = CaseResult(case.expected, answered, elapsed, rule)
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
                results.append(result)
            if dialog.llm is not None:
                await dialog.llm.aclose()
        finally:
            await store.dispose()
            await cache.dispose()
    out = compute_metrics(results)
    if use_llm and settings.llm_base_url:
        out.update(compute_llm_metrics(results))
    out.update(
        {
            "kb_entries": len(docs),
            "index_build_seconds": round(build_seconds, 2),
            "answer_threshold": settings.dialog_answer_threshold,
            "embedding_model": settings.embedding_model,
            "llm": bool(use_llm and settings.llm_base_url),
        }
    )
    return out
