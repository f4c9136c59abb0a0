"""Hybrid knowledge-base index: BM25 + embeddings + a linear classifier head, fused and calibrated.

For a query the index computes, per KB entry:

- ``head``: the probability from a multinomial logistic-regression head trained (numpy, at build
  time) on the embeddings of the entry's example questions, its title and its answer passage;
- ``knn``: the highest cosine similarity between the query and any of those example embeddings;
- ``bm25``: the BM25 score of the entry's text (title, questions, answer), divided by the best
  entry's score so it lies in [0, 1].

The fused score is ``log(head) + LEXICAL_WEIGHT * bm25 + KNN_WEIGHT * knn``; candidates are
ordered by it. The confidence of each candidate is a logistic calibration of its fused softmax
probability and two query-level in-scope signals: how far the query's kNN similarity and fused score
beat, for some entry, the similarity a genuine question of that entry typically reaches (a per-entry
reference measured on the KB at build time, :func:`similarity_references`; constants in
:data:`CALIBRATION`, fitted as documented there), so confidence and fused score give the same order.
Everything at query time is a handful of vectorised numpy operations plus one embedding call.

Two additions of issue #16: a question in a language an entry lacks gets the cross-lingual offsets of
:mod:`~ai_customer_service.dialog.crosslingual` on its kNN and fused scores, and every build fits
the KB's own answer threshold (``index.operating_point``) on a held-out fold of the KB
(:mod:`~ai_customer_service.dialog.selfcal`), scored by the same batched code as a customer message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np
import numpy.typing as npt

from ai_customer_service.dialog import crosslingual, selfcal
from ai_customer_service.dialog.calibration import FALLBACK, OperatingPoint
from ai_customer_service.dialog.embedding import Embedder, Matrix
from ai_customer_service.dialog.text import detect_language, tokenize

FloatArray = npt.NDArray[np.float32]

# Logit scale of the classifier head on unit-length, centred embeddings (an inverse temperature of
# 1/20 = 0.05, the usual range for contrastively trained sentence encoders). Chosen on the BANKING77
# validation split among {5, 10, 20, 40}; see docs/evaluation.md.
HEAD_SCALE = 20.0
# L2 penalty of the head and its optimiser settings (Adam, full batch). 1e-3 beat 1e-2 and 1e-4;
# 100 steps score within 0.2 points of 200 at half the build time.
HEAD_L2 = 1e-3
HEAD_STEPS = 100
HEAD_LEARNING_RATE = 0.1
# Training cost and memory grow with examples x entries; above this budget (about 6x BANKING77 with
# 10,000 questions) the head is skipped and ranking uses kNN + BM25 only (a uniform head).
HEAD_MAX_CELLS = 5_000_000
# Fusion weights on max-normalised BM25 and on the kNN cosine (in logit units per unit cosine),
# picked on the BANKING77 validation split from {0.5, 1, 2} x {5, 10, 20}; best for both KB densities.
LEXICAL_WEIGHT = 2.0
KNN_WEIGHT = 20.0
# Fallbacks of the per-entry similarity reference (see similarity_references) for a KB with too few
# example questions to measure it: for an entry with example questions, and for one with only a
# title and an answer. Measured curves: BANKING77 0.884 (title and answer only), 0.914 (3
# questions), 0.943 (10), 0.966 (about 90); demo KB 0.880 (title and answer only), 0.915 (6-8).
DEFAULT_QUESTION_REFERENCE = 0.91
DEFAULT_ANCHOR_REFERENCE = 0.88
REFERENCE_SAMPLE = 2000
# The reference curve needs this many sampled questions at a sibling count to be measured there,
# and stops at this many siblings (it is flat long before: 0.966 from about 60 on BANKING77).
REFERENCE_MIN_SAMPLES = 20
REFERENCE_MAX_SIBLINGS = 255


def reference_ceiling(siblings: npt.NDArray[np.int64]) -> FloatArray:
    """The highest reference believed for an entry with this many example questions.

    A KB's example questions are often closer to their title and to each other than customers'
    wordings are (the first question of an entry is typically the title as a question). Measured
    on such a KB, the curve overstates how close a genuine question gets, and paraphrases are
    declined: the demo KB's Chinese part with one question per entry measured 0.964 for questions
    that customers' wordings reach at about 0.88. Every real curve we measured stays below this
    bound (BANKING77 0.884 / 0.914 / 0.943 / 0.966 with 0 / 3 / 10 / about 90 questions; the demo KB
    0.880-0.934), so it only tempers curves made of near-duplicates.
    """
    bound = 0.90 + 0.02 * np.log2(1.0 + siblings.astype(np.float64))
    return np.minimum(bound, 0.97).astype(np.float32)


# Queries scored together when the index scores its own held-out fold (self-calibration).
SCORE_CHUNK = 128

# Characters of the answer embedded as the entry's passage (the encoder's window is 512 tokens).
ANSWER_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Calibration:
    """``confidence = sigmoid(bias + w_prob * prob + w_knn * knn_feature + w_fused * fused_feature)``.

    - ``prob``: the candidate's fused softmax probability (which entry);
    - ``knn_feature = 10 * max over entries of (knn - reference)``: how much closer the query is to
      some entry's examples than a genuine new question of that entry typically is;
    - ``fused_feature = max over entries of (fused - KNN_WEIGHT * reference) / 10``: the same for
      the fused score (head log-probability + lexical + kNN evidence).

    ``reference`` is per entry (:func:`similarity_references`): it depends on how many example
    questions the entry has, so the features mean the same in sparse and dense KBs and in a KB that
    mixes both. Both features are per query, so confidence keeps the fused order.
    """

    bias: float
    w_prob: float
    w_knn: float
    w_fused: float = 0.0

    def __call__(self, prob: FloatArray, knn_margin: float, fused_margin: float) -> FloatArray:
        z = (
            self.bias
            + self.w_prob * prob
            + self.w_knn * knn_margin * 10.0
            + self.w_fused * fused_margin / 10.0
        )
        out: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))).astype(np.float32)
        return out


# Fitted by `python bench/quality/calibrate.py` (defaults: label "in scope", multi-domain weight 3) on
# validation rows only, pooled from three settings: BANKING77 with 10 held-out intents as
# out-of-scope (KB of 10 questions per entry, and of all pool questions: "near" OOS) and the
# multi-domain proxy (BANKING77 + the demo KB, hand-written far/mid OOS questions), class-balanced
# within each. The label is "the question is answerable from the KB", so the query-level similarity
# margins dominate and the fused probability only breaks ties. Refitted on 2026-11-30 when the
# KB-wide similarity reference became a per-entry one (previous: b = -0.06, w_p = 0.39, w_k = 4.37,
# w_f = 7.46, same threshold 0.37). See docs/evaluation.md.
CALIBRATION = Calibration(bias=0.08, w_prob=0.26, w_knn=4.05, w_fused=7.84)


@dataclass(frozen=True, slots=True)
class KBDoc:
    """One knowledge-base entry as the index sees it."""

    id: str
    title: str
    answer: str
    questions: tuple[str, ...] = ()
    locale: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ranked entry: ``score`` is the fused score, ``confidence`` the calibrated one in [0, 1]."""

    entry_id: str
    score: float
    confidence: float
    components: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuildStats:
    entries: int
    examples: int
    seconds: float


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out


def _unit_rows(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: FloatArray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def train_softmax_head(
    x: FloatArray,
    y: npt.NDArray[np.int64],
    n_classes: int,
    l2: float = HEAD_L2,
    steps: int = HEAD_STEPS,
    learning_rate: float = HEAD_LEARNING_RATE,
) -> tuple[FloatArray, FloatArray]:
    """Multinomial logistic regression by full-batch Adam. Returns ``(weights (d, C), bias (C,))``."""
    n, d = x.shape
    w = np.zeros((d, n_classes), dtype=np.float32)
    b = np.zeros(n_classes, dtype=np.float32)
    targets = np.zeros((n, n_classes), dtype=np.float32)
    targets[np.arange(n), y] = 1.0
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2 = 0.9, 0.999
    for t in range(1, steps + 1):
        grad = (_softmax(x @ w + b) - targets) / n
        g_w = x.T @ grad + l2 * w
        g_b = grad.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        lr_t = learning_rate * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        w -= lr_t * m_w / (np.sqrt(v_w) + 1e-8)
        b -= lr_t * m_b / (np.sqrt(v_b) + 1e-8)
    return w, b


def similarity_references(
    examples: FloatArray,
    owners: npt.NDArray[np.int64],
    is_question: npt.NDArray[np.bool_],
    n_entries: int,
) -> FloatArray:
    """Per entry: the cosine a genuine new question typically reaches with that entry's examples.

    A question's best similarity to an entry grows with the number of example questions it has, so
    one KB-wide reference misjudges a KB that mixes dense and sparse entries (or has none). This
    measures a curve on the KB itself: for a fixed-seed sample of example questions, the best cosine
    to the entry's anchors (title and answer passage) and to ``m`` randomly chosen sibling
    questions, for every ``m``; ``ref(m)`` is the median over the sampled questions whose entry has
    at least ``m`` siblings (where at least :data:`REFERENCE_MIN_SAMPLES` do). An entry with ``n``
    questions gets ``ref(n)``, or the curve's value at its largest measured ``m`` below ``n``.
    The curve is capped by :func:`reference_ceiling`. Without enough questions to measure
    ``ref(0)``, the fallbacks :data:`DEFAULT_ANCHOR_REFERENCE` (no questions) and
    :data:`DEFAULT_QUESTION_REFERENCE` (some) are used.
    """
    n_questions = np.bincount(owners[is_question], minlength=n_entries)
    questions = np.flatnonzero(is_question)
    fallback = np.where(n_questions > 0, DEFAULT_QUESTION_REFERENCE, DEFAULT_ANCHOR_REFERENCE)
    if questions.size < REFERENCE_MIN_SAMPLES:
        return fallback.astype(np.float32)
    rng = np.random.default_rng(0)
    sample = rng.choice(questions, size=min(REFERENCE_SAMPLE, questions.size), replace=False)
    # each entry's rows, questions and anchors (title, answer passage) apart: one argsort, no masks
    order = np.argsort(owners, kind="stable")
    bounds = np.searchsorted(owners[order], np.arange(n_entries + 1))
    # best[k, m]: sampled question k's best cosine to its entry's anchors and m of its siblings
    depth = min(int(n_questions.max()), REFERENCE_MAX_SIBLINGS + 1)
    best = np.full((sample.size, depth), np.nan, dtype=np.float32)
    for start in range(0, sample.size, 256):  # chunks bound the temporary matrix (256 x examples)
        part = sample[start : start + 256]
        sims = examples[part] @ examples.T
        for row, i in enumerate(part):
            rows = order[bounds[owners[i]] : bounds[owners[i] + 1]]
            anchors = sims[row, rows[~is_question[rows]]]
            siblings = sims[row, rows[is_question[rows] & (rows != i)]]
            steps = np.r_[-1.0, np.maximum.accumulate(rng.permutation(siblings))][:depth]
            best[start + row, : steps.size] = np.maximum(anchors.max(initial=-1.0), steps)
    # questions with m siblings are a subset of those with m - 1: the measured m form a prefix
    measured = int(np.sum(np.sum(~np.isnan(best), axis=0) >= REFERENCE_MIN_SAMPLES))
    if measured == 0:  # only when the similarities themselves are not finite
        return fallback.astype(np.float32)
    curve = np.array([np.nanmedian(best[:, m]) for m in range(measured)], dtype=np.float32)
    curve = np.minimum(curve, reference_ceiling(np.arange(measured)))
    # an entry with n questions: the curve at min(n, last measured m); n siblings is never measured
    # for the densest entries (a sampled question has at most n - 1), so they take the last point
    return curve[np.minimum(n_questions, measured - 1)].astype(np.float32)


def entry_text(doc: KBDoc) -> str:
    """The text BM25 indexes for an entry: title twice (it is short and dense), questions, answer."""
    return "\n".join([doc.title, doc.title, *doc.questions, doc.answer])


class _Scorer:
    """The arrays a KB is scored with, and the batched scoring itself.

    The index has one; self-calibration builds a second one on a held-out fold of the KB and scores
    the held-out questions with exactly the same code as a customer's message.
    """

    def __init__(
        self,
        examples: FloatArray,
        owners: npt.NDArray[np.int64],
        example_langs: npt.NDArray[np.int8],
        n_entries: int,
        mean: FloatArray,
        head_w: FloatArray,
        head_b: FloatArray,
        retriever: bm25s.BM25 | None,
        references: FloatArray,
        calibration: Calibration,
        absent: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        # Examples sorted by entry, so the per-entry best similarity is one ``maximum.reduceat``
        # over contiguous runs (``np.maximum.at`` took ~8 ms per query on 10,000 examples).
        order = np.argsort(owners, kind="stable")
        in_order = bool(np.all(order == np.arange(order.size)))
        self.examples = examples if in_order else examples[order]  # no copy when already sorted
        self.owners = owners if in_order else owners[order]
        self.n = n_entries
        if self.owners.size:
            starts = np.flatnonzero(np.r_[True, self.owners[1:] != self.owners[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        self.run_starts = starts
        self.run_entries = self.owners[starts] if starts.size else starts
        self.dense = starts.size == n_entries
        self.mean = mean
        self.head_w = head_w
        self.head_b = head_b
        self.retriever = retriever
        self.references = references
        self.calibration = calibration
        # entries that are not part of this scorer (held out whole in a calibration fold)
        self.absent = absent
        # cross-lingual correction per query language: an offset on the cosine to examples in
        # another language, and on the fused score of entries without text in the query's language
        langs = example_langs[order]
        present = np.zeros((n_entries, len(crosslingual.LANGUAGES)), dtype=bool)
        if self.owners.size:
            present[self.owners, langs] = True
        self.example_offsets = (
            np.stack(
                [
                    np.where(langs == i, 0.0, crosslingual.knn_offset(lang)).astype(np.float32)
                    for i, lang in enumerate(crosslingual.LANGUAGES)
                ]
            )
            if langs.size
            else np.zeros((len(crosslingual.LANGUAGES), 0), dtype=np.float32)
        )
        self.entry_offsets = np.stack(
            [
                np.where(present[:, i], 0.0, crosslingual.fused_offset(lang)).astype(np.float32)
                for i, lang in enumerate(crosslingual.LANGUAGES)
            ]
        )

    def bm25(self, text: str) -> FloatArray:
        tokens = tokenize(text)
        if self.retriever is None or not tokens:
            return np.zeros(self.n, dtype=np.float32)
        scores = np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)
        top = float(scores.max()) if scores.size else 0.0
        return scores / top if top > 0 else np.zeros(self.n, dtype=np.float32)

    def score(self, q: FloatArray, texts: Sequence[str]) -> dict[str, FloatArray]:
        """Every signal for every entry, for a batch of queries: arrays of shape (len(texts), n)."""
        m = len(texts)
        langs = np.array([crosslingual.language_index(detect_language(t)) for t in texts], dtype=np.int64)
        sims = q @ self.examples.T
        if self.example_offsets.shape[1]:
            sims = sims + (self.example_offsets[langs] if m > 1 else self.example_offsets[langs[0]])
        if self.dense:  # every entry has at least one example
            knn = np.maximum.reduceat(sims, self.run_starts, axis=1).astype(np.float32) if m else sims[:, :0]
        else:
            knn = np.full((m, self.n), -1.0, dtype=np.float32)
            if self.run_starts.size:
                knn[:, self.run_entries] = np.maximum.reduceat(sims, self.run_starts, axis=1)

        centred = _unit_rows(q - self.mean)
        logits = np.asarray((centred * np.float32(HEAD_SCALE)) @ self.head_w + self.head_b, dtype=np.float32)
        head = _softmax(logits)

        bm25 = np.stack([self.bm25(t) for t in texts]) if m else np.zeros((0, self.n), dtype=np.float32)
        fused = (
            np.log(np.maximum(head, 1e-12))
            + LEXICAL_WEIGHT * bm25
            + KNN_WEIGHT * knn
            + self.entry_offsets[langs]
        ).astype(np.float32)
        if self.absent is not None:
            fused[:, self.absent] = -1e9
        prob = _softmax(fused)
        # How far the query beats the typical similarity of a genuine question to some entry (kNN
        # and fused evidence) says whether it is in scope at all; prob says which entry. Both
        # margins are per query, which keeps the confidence order identical to the fused order.
        knn_margin = (knn - self.references).max(axis=1)
        fused_margin = (fused - KNN_WEIGHT * self.references).max(axis=1)
        top = np.argmax(fused, axis=1)
        rows = np.arange(m)
        calibrated = np.array(
            [
                self.calibration(prob[i, top[i] : top[i] + 1], float(knn_margin[i]), float(fused_margin[i]))[
                    0
                ]
                for i in rows
            ],
            dtype=np.float32,
        )
        # That calibrated confidence belongs to the best entry; a runner-up gets it in proportion to
        # its share of the fused probability, so that the candidates of /kb/search are not all shown
        # as equally likely (the order, and the best entry's value, are unchanged).
        confidence = (calibrated[:, None] * prob / prob[rows, top][:, None]).astype(np.float32)
        return {
            "fused": fused,
            "prob": prob,
            "confidence": confidence,
            "head": head,
            "knn": knn,
            "bm25": bm25,
            "knn_margin": knn_margin.astype(np.float32),
            "fused_margin": fused_margin.astype(np.float32),
            "top": top,
        }


class KnowledgeIndex:
    """An immutable, thread-safe (read-only after build) search index over KB entries."""

    def __init__(
        self,
        docs: Sequence[KBDoc],
        embedder: Embedder,
        examples: FloatArray,
        owners: npt.NDArray[np.int64],
        mean: FloatArray,
        head_w: FloatArray,
        head_b: FloatArray,
        retriever: bm25s.BM25 | None,
        build_stats: BuildStats,
        calibration: Calibration | None = None,
        references: FloatArray | None = None,
        example_langs: npt.NDArray[np.int8] | None = None,
    ) -> None:
        self.docs = tuple(docs)
        self.embedder = embedder
        # per entry: a genuine question's typical best cosine to it (see similarity_references)
        self.references = (
            references
            if references is not None
            else np.full(len(docs), DEFAULT_QUESTION_REFERENCE, dtype=np.float32)
        )
        self._scorer = _Scorer(
            examples,
            owners,
            example_langs if example_langs is not None else np.zeros(owners.size, dtype=np.int8),
            len(docs),
            mean,
            head_w,
            head_b,
            retriever,
            self.references,
            calibration or CALIBRATION,
        )
        self.build_stats = build_stats
        # the threshold this KB answers at and what it is expected to give (dialog/calibration.py)
        self.operating_point: OperatingPoint = FALLBACK
        # the held-out results it was fitted on (None: too small a KB, the fallback point)
        self.calibration_sample: selfcal.Sample | None = None
        self._by_id = {d.id: d for d in self.docs}

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        docs: Sequence[KBDoc],
        embedder: Embedder,
        calibration: Calibration | None = None,
        *,
        target_precision: float | None = None,
    ) -> KnowledgeIndex:
        """Embed and index ``docs`` (synchronous, CPU-bound: run it in a worker thread).

        ``calibration`` overrides the shipped :data:`CALIBRATION` (used when refitting it).
        ``target_precision``: the answer precision the KB's operating point is fitted for
        (``index.operating_point``, :mod:`~ai_customer_service.dialog.selfcal`); None uses
        :data:`~ai_customer_service.dialog.selfcal.DEFAULT_TARGET_PRECISION`.
        """
        started = time.perf_counter()
        docs = list(docs)
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate entry ids in knowledge base")
        dim = embedder.dim
        if not docs:
            empty = np.zeros((0, dim), dtype=np.float32)
            return cls(
                docs,
                embedder,
                empty,
                np.zeros(0, dtype=np.int64),
                np.zeros(dim, dtype=np.float32),
                np.zeros((dim, 0), dtype=np.float32),
                np.zeros(0, dtype=np.float32),
                None,
                BuildStats(0, 0, time.perf_counter() - started),
                calibration,
            )

        # Example questions and titles are embedded as queries (symmetric question-question
        # matching); the answer as a passage.
        query_texts: list[str] = []
        query_owner: list[int] = []
        query_is_question: list[bool] = []
        for i, doc in enumerate(docs):
            for j, q in enumerate(dict.fromkeys((doc.title, *doc.questions))):
                if q.strip():
                    query_texts.append(q)
                    query_owner.append(i)
                    query_is_question.append(j > 0)
        passages = [f"{d.title}\n{d.answer[:ANSWER_CHARS]}" for d in docs]
        examples = np.concatenate(
            [embedder.embed_queries(query_texts), embedder.embed_passages(passages)]
        ).astype(np.float32)
        owners = np.array(query_owner + list(range(len(docs))), dtype=np.int64)
        example_langs = np.array(
            # the first 300 characters say a passage's language (answers run to 1,000)
            [crosslingual.language_index(detect_language(t[:300])) for t in [*query_texts, *passages]],
            dtype=np.int8,
        )
        head_w, head_b, mean = _fit_head(examples, owners, len(docs))
        retriever = _bm25_index(docs)
        is_question = np.r_[np.array(query_is_question, dtype=bool), np.zeros(len(docs), dtype=bool)]
        references = similarity_references(examples, owners, is_question, len(docs))
        stats = BuildStats(len(docs), len(examples), time.perf_counter() - started)
        index = cls(
            docs,
            embedder,
            examples,
            owners,
            mean,
            head_w,
            head_b,
            retriever,
            stats,
            calibration,
            references,
            example_langs,
        )
        target = selfcal.DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
        index.calibration_sample = _self_calibrate(
            docs,
            query_texts,
            examples,
            owners,
            example_langs,
            is_question,
            references,
            index._scorer.calibration,
            embedder,
        )
        if index.calibration_sample is not None:
            index.operating_point = selfcal.choose_operating_point(
                index.calibration_sample.confidence,
                index.calibration_sample.correct,
                index.calibration_sample.kind,
                target,
            )
        index.build_stats = BuildStats(len(docs), len(examples), time.perf_counter() - started)
        return index

    # ---- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.docs)

    def get(self, entry_id: str) -> KBDoc | None:
        return self._by_id.get(entry_id)

    def score_all(self, text: str, query_vector: Matrix | None = None) -> dict[str, FloatArray]:
        """Every signal for every entry (arrays aligned with :attr:`docs`)."""
        if query_vector is None:
            query_vector = self.embedder.embed_queries([text])[0]
        q = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        s = self._scorer.score(q, [text])
        return {k: v[0] for k, v in s.items() if k != "top"}

    def rank(self, text: str, k: int = 5, query_vector: Matrix | None = None) -> list[Candidate]:
        """The ``k`` best entries for ``text``, best first; [] for an empty KB.

        The order is by fused score, which is also the order of confidence (see :meth:`score_all`).

        ``query_vector`` lets a caller pass an embedding it computed (e.g. in a micro-batch).
        """
        if not self.docs or k <= 0:
            return []
        s = self.score_all(text, query_vector)
        order = np.argsort(-s["fused"], kind="stable")[:k]
        return [
            Candidate(
                entry_id=self.docs[i].id,
                score=float(s["fused"][i]),
                confidence=float(s["confidence"][i]),
                components={
                    "head": float(s["head"][i]),
                    "knn": float(s["knn"][i]),
                    "bm25": float(s["bm25"][i]),
                    "prob": float(s["prob"][i]),
                },
            )
            for i in order
        ]


def _fit_head(
    examples: FloatArray, owners: npt.NDArray[np.int64], n_entries: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The classifier head ``(weights, bias, centring mean)``; uniform for one entry or a huge KB."""
    dim = examples.shape[1]
    mean = examples.mean(axis=0).astype(np.float32)
    if n_entries > 1 and len(examples) * n_entries <= HEAD_MAX_CELLS:
        head_w, head_b = train_softmax_head(
            _unit_rows(examples - mean) * HEAD_SCALE,
            owners,
            n_entries,
            l2=HEAD_L2,
            steps=HEAD_STEPS,
            learning_rate=HEAD_LEARNING_RATE,
        )
    else:  # one entry, or too large a KB: a uniform head
        head_w = np.zeros((dim, n_entries), dtype=np.float32)
        head_b = np.zeros(n_entries, dtype=np.float32)
    return head_w, head_b, mean


def _bm25_index(docs: Sequence[KBDoc]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    retriever.index([tokenize(entry_text(d)) or ["\u2400"] for d in docs], show_progress=False)
    return retriever


def _self_calibrate(
    docs: Sequence[KBDoc],
    query_texts: Sequence[str],
    examples: FloatArray,
    owners: npt.NDArray[np.int64],
    example_langs: npt.NDArray[np.int8],
    is_question: npt.NDArray[np.bool_],
    references: FloatArray,
    calibration: Calibration,
    embedder: Embedder,
) -> selfcal.Sample | None:
    """Score a held-out fold of the KB for its operating point (:mod:`ai_customer_service.dialog.selfcal`).

    The fold drops the held-out questions from the kNN examples, retrains the head without them and
    re-indexes BM25 without their text, then scores them (and the near misses and the shipped
    out-of-scope corpus) exactly as customer messages are scored. The similarity references stay
    those of the whole KB, which an entry's new questions are judged against.
    """
    fold = selfcal.make_fold(owners, is_question, len(docs))
    if fold is None:
        return None
    keep = np.ones(len(examples), dtype=bool)
    keep[fold.held_rows] = False
    absent = np.zeros(len(docs), dtype=bool)
    absent[fold.near_entries] = True
    keep &= ~absent[owners]
    held_texts: dict[int, set[str]] = {}
    for row in fold.positives:
        held_texts.setdefault(int(owners[row]), set()).add(query_texts[row])
    fold_docs = [
        KBDoc(d.id, "", "")
        if absent[i]
        else KBDoc(d.id, d.title, d.answer, tuple(q for q in d.questions if q not in held_texts.get(i, ())))
        for i, d in enumerate(docs)
    ]
    # The fold's head learns from at most FOLD_HEAD_QUESTIONS questions per entry (plus its title
    # and passage): a dense KB's second head costs a fraction of the first; its held-out questions
    # are then judged by a slightly weaker head than the KB's (a cautious approximation).
    rng = np.random.default_rng(selfcal.SEED)
    shuffled = np.flatnonzero(keep)[rng.permutation(int(keep.sum()))]
    order = np.argsort(owners[shuffled], kind="stable")
    sorted_owners, sorted_q = owners[shuffled][order], is_question[shuffled][order]
    first = np.searchsorted(sorted_owners, sorted_owners)  # each row's entry's first row
    counted = np.cumsum(sorted_q)
    rank = np.empty(shuffled.size, dtype=np.int64)
    rank[order] = counted - counted[first] + sorted_q[first]  # 1-based rank among its entry's questions
    head_rows = np.sort(shuffled[~is_question[shuffled] | (rank <= selfcal.FOLD_HEAD_QUESTIONS)])
    head_w, head_b, mean = _fit_head(examples[head_rows], owners[head_rows], len(docs))
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(owners[kept], kind="stable")]  # sorted by entry: the scorer copies nothing
    scorer = _Scorer(
        examples[kept],
        owners[kept],
        example_langs[kept],
        len(docs),
        mean,
        head_w,
        head_b,
        _bm25_index(fold_docs),
        references,
        calibration,
        absent=absent,
    )
    far = selfcal.oos_vectors(embedder)
    rows = np.r_[fold.positives, fold.near]
    vectors = np.concatenate([examples[rows], far]).astype(np.float32)
    texts = [query_texts[r] for r in rows] + list(selfcal.oos_texts())
    kind = np.r_[
        np.zeros(fold.positives.size, dtype=np.int8),
        np.ones(fold.near.size, dtype=np.int8),
        np.full(len(far), 2, dtype=np.int8),
    ]
    confidence = np.empty(len(texts), dtype=np.float32)
    top = np.empty(len(texts), dtype=np.int64)
    # chunks bound the temporary (chunk x examples) matrices: 128 x 10,000 float32 = 5 MB each
    for start in range(0, len(texts), SCORE_CHUNK):
        part = scorer.score(vectors[start : start + SCORE_CHUNK], texts[start : start + SCORE_CHUNK])
        t = part["top"]
        top[start : start + len(t)] = t
        confidence[start : start + len(t)] = part["confidence"][np.arange(len(t)), t]
    correct = np.zeros(len(texts), dtype=bool)
    correct[: fold.positives.size] = top[: fold.positives.size] == owners[fold.positives]
    return selfcal.Sample(confidence, correct, kind)
