"""Self-calibration of a knowledge base's answer threshold at build time (issue #16).

The confidence of :mod:`ai_customer_service.dialog.index` is one shipped calibration; *where* on it
a KB should answer depends on the KB (near-duplicate entries confuse each other, distant ones do
not). :func:`choose_operating_point` picks the threshold that reaches the operator's target answer
precision with the best answer rate, on one held-out fold of the KB itself:

- **positives** (answerable, correct when the top entry is their own): about a fifth of the example
  questions of every entry with at least two (at most :data:`MAX_POSITIVES`), held out of the kNN
  examples, the classifier head (retrained once on the fold, on at most
  :data:`FOLD_HEAD_QUESTIONS` questions per entry: an approximation of leave-one-out that judges
  the held-out questions with a slightly weaker head) and BM25;
- **near misses** (not answerable): up to :data:`NEAR_QUESTIONS` questions of each of about a tenth
  of the entries (at most :data:`MAX_NEAR_ENTRIES`), held out whole: questions that resemble the KB
  but that it cannot answer;
- **far negatives**: a shipped bilingual out-of-scope corpus (``data/calibration_oos.jsonl``,
  written for the project, distinct from the benchmark's out-of-scope set).

Precision counts a wrong entry and an answered negative as a wrong answer, under an assumed traffic
mix: :data:`OUT_OF_SCOPE_SHARE` of the questions are out of scope (a quarter near misses, the rest
far). The fitted threshold is shrunk towards the global default as if that had been fitted on
:data:`PRIOR_QUESTIONS` held-out questions: a KB with few questions moves it a little, a dense one
a lot. A KB with fewer than :data:`MIN_ENTRIES` entries or :data:`MIN_POSITIVES` held-out questions keeps
the documented fallback (:data:`~ai_customer_service.dialog.calibration.FALLBACK_THRESHOLD`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ai_customer_service.dialog.calibration import FALLBACK, FALLBACK_THRESHOLD, OperatingPoint
from ai_customer_service.dialog.embedding import Embedder, Matrix

DATA = Path(__file__).resolve().parent / "data"
OOS_FILE = DATA / "calibration_oos.jsonl"

# The answer precision a KB's threshold is fitted for when the operator does not state one
# (AI_CS_DIALOG_TARGET_PRECISION; chosen on validation data, docs/evaluation.md).
DEFAULT_TARGET_PRECISION = 0.8

# Size rule: below either bound the KB answers at the fallback threshold.
MIN_ENTRIES = 5
MIN_POSITIVES = 20
# The held-out fold.
HOLDOUT_SHARE = 0.2
MAX_POSITIVES = 1500
NEAR_ENTRY_SHARE = 0.1
MAX_NEAR_ENTRIES = 40
NEAR_QUESTIONS = 5
# The fold's classifier head is retrained on at most this many questions per entry (build time).
FOLD_HEAD_QUESTIONS = 16
# The traffic mix the expected precision assumes: this share of questions is out of scope, a quarter
# of them near misses (other topics of the same business), the rest far ones. Chosen with the
# default target and PRIOR_QUESTIONS on validation splits (bench/quality/selfcal_eval.py).
OUT_OF_SCOPE_SHARE = 0.3
NEAR_SHARE_OF_OOS = 0.25
# Bounds of a fitted threshold; if the target cannot be reached, the most precise threshold that
# still answers at least this share of the held-out in-scope questions.
MIN_THRESHOLD = 0.05
MAX_THRESHOLD = 0.95
MIN_ANSWER_RATE = 0.2
# The fitted threshold is shrunk towards FALLBACK_THRESHOLD as if the fallback had been fitted on
# this many held-out questions: (n * fitted + PRIOR_QUESTIONS * fallback) / (n + PRIOR_QUESTIONS).
PRIOR_QUESTIONS = 300.0

SEED = 0


@dataclass(frozen=True, slots=True)
class Fold:
    """Rows of the KB's example matrix held out for self-calibration."""

    positives: npt.NDArray[np.int64]  # example rows of held-out questions (entries still in the KB)
    near: npt.NDArray[np.int64]  # example rows of questions of entries held out whole
    near_entries: npt.NDArray[np.int64]

    @property
    def held_rows(self) -> npt.NDArray[np.int64]:
        return np.union1d(self.positives, self.near)


def make_fold(
    owners: npt.NDArray[np.int64], is_question: npt.NDArray[np.bool_], n_entries: int
) -> Fold | None:
    """The held-out fold, or None when the KB is too small to calibrate itself (size rule)."""
    if n_entries < MIN_ENTRIES:
        return None
    rng = np.random.default_rng(SEED)
    q_rows = np.flatnonzero(is_question)
    by_entry = [q_rows[owners[q_rows] == e] for e in range(n_entries)] if q_rows.size else []
    if not by_entry:
        return None
    with_questions = np.array([e for e in range(n_entries) if by_entry[e].size > 0], dtype=np.int64)
    n_near = min(MAX_NEAR_ENTRIES, round(NEAR_ENTRY_SHARE * n_entries))
    # keep at least MIN_ENTRIES - 1 entries with questions in the fold
    n_near = max(0, min(n_near, with_questions.size - (MIN_ENTRIES - 1)))
    near_entries = (
        np.sort(rng.choice(with_questions, size=n_near, replace=False)) if n_near else with_questions[:0]
    )
    near: list[int] = []
    positives: list[int] = []
    near_set = set(near_entries.tolist())
    for e in range(n_entries):
        rows = by_entry[e]
        if e in near_set:
            near += rng.choice(rows, size=min(NEAR_QUESTIONS, rows.size), replace=False).tolist()
        elif rows.size >= 2:
            k = max(1, round(HOLDOUT_SHARE * rows.size))
            positives += rng.choice(rows, size=k, replace=False).tolist()
    if len(positives) < MIN_POSITIVES:
        return None
    pos = np.array(positives, dtype=np.int64)
    if pos.size > MAX_POSITIVES:
        pos = rng.choice(pos, size=MAX_POSITIVES, replace=False)
    return Fold(np.sort(pos), np.sort(np.array(near, dtype=np.int64)), near_entries)


@dataclass(frozen=True, slots=True)
class Sample:
    """The held-out fold's results the operating point was chosen on (kept for reports and sweeps).

    ``kind``: 0 held-out in-scope question, 1 near miss, 2 far out-of-scope question; ``correct``:
    the question's top entry was its own (positives only).
    """

    confidence: npt.NDArray[np.float32]
    correct: npt.NDArray[np.bool_]
    kind: npt.NDArray[np.int8]


@lru_cache(maxsize=1)
def oos_texts() -> tuple[str, ...]:
    """The shipped far out-of-scope questions (English and Chinese)."""
    rows = [json.loads(line) for line in OOS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple(str(r["text"]) for r in rows)


_oos_vectors: dict[str, Matrix] = {}
_oos_lock = threading.Lock()


def oos_vectors(embedder: Embedder) -> Matrix:
    """The corpus embedded as queries by ``embedder`` (once per model and process)."""
    key = f"{embedder.model_name}/{embedder.dim}"
    with _oos_lock:
        cached = _oos_vectors.get(key)
    if cached is None:
        cached = np.asarray(embedder.embed_queries(list(oos_texts())), dtype=np.float32)
        with _oos_lock:
            _oos_vectors[key] = cached
    return cached


def choose_operating_point(
    confidence: npt.NDArray[np.float32],
    correct: npt.NDArray[np.bool_],
    kind: npt.NDArray[np.int8],
    target_precision: float,
    out_of_scope_share: float = OUT_OF_SCOPE_SHARE,
    near_share_of_oos: float = NEAR_SHARE_OF_OOS,
    prior_questions: float = PRIOR_QUESTIONS,
) -> OperatingPoint:
    """The lowest threshold whose weighted answer precision reaches ``target_precision``.

    ``kind``: 0 positive (held-out in-scope question), 1 near miss, 2 far out-of-scope question;
    ``correct``: the positive's top entry was its own. Weights follow the assumed traffic mix.
    """
    n_pos = int(np.sum(kind == 0))
    n_near = int(np.sum(kind == 1))
    n_far = int(np.sum(kind == 2))
    if n_pos == 0:
        return FALLBACK
    near_share = out_of_scope_share * near_share_of_oos if n_near else 0.0
    far_share = out_of_scope_share - near_share if n_far else 0.0
    if n_far == 0 and n_near:
        near_share = out_of_scope_share
    in_share = 1.0 - near_share - far_share
    weight = np.where(
        kind == 0,
        in_share / n_pos,
        np.where(kind == 1, near_share / max(n_near, 1), far_share / max(n_far, 1)),
    )
    order = np.argsort(-confidence, kind="stable")
    conf = confidence[order].astype(np.float64)
    w = weight[order]
    good = (correct[order] & (kind[order] == 0)).astype(np.float64)
    pos = (kind[order] == 0).astype(np.float64)
    mass = np.cumsum(w)
    precision = np.cumsum(w * good) / np.maximum(mass, 1e-12)
    answer_rate = np.cumsum(pos) / n_pos
    # a threshold equal to conf[i] answers rows 0..j where j is the last row with that confidence
    last = np.r_[conf[1:] != conf[:-1], True]
    cand = np.flatnonzero(last & (conf >= MIN_THRESHOLD) & (conf <= MAX_THRESHOLD))
    if cand.size == 0:
        return FALLBACK
    ok = cand[precision[cand] >= target_precision]
    if ok.size:
        i = int(ok.max())  # the lowest threshold reaching the target: the best answer rate
    else:
        usable = cand[answer_rate[cand] >= MIN_ANSWER_RATE]
        pool = usable if usable.size else cand
        i = int(pool[np.argmax(precision[pool])])
    # a fit on few held-out questions is noisy: shrink it towards the global default
    fitted = float(conf[i])
    threshold = (n_pos * fitted + prior_questions * FALLBACK_THRESHOLD) / (n_pos + prior_questions)
    answered = conf >= threshold
    n_answered = int(answered.sum())
    j = n_answered - 1  # the last answered row (rows are sorted by confidence)
    oos = kind[order] != 0
    return OperatingPoint(
        threshold=round(threshold, 4),
        source="self-calibrated",
        target_precision=target_precision,
        expected_precision=round(float(precision[j]), 4) if n_answered else None,
        expected_answer_rate=round(float(answer_rate[j]), 4) if n_answered else 0.0,
        positives=n_pos,
        negatives=n_near + n_far,
        expected_in_scope_accuracy=round(float(np.sum(good[answered]) / n_pos), 4),
        expected_out_of_scope_recall=(round(float(np.mean(~answered[oos])), 4) if np.any(oos) else None),
    )
