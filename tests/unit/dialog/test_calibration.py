"""Self-calibration of a KB's operating point at build time (dialog/selfcal.py, issue #16)."""

import numpy as np
import pytest

from ai_customer_service.dialog import selfcal
from ai_customer_service.dialog.calibration import FALLBACK_THRESHOLD, OperatingPoint
from ai_customer_service.dialog.embedding import FakeEmbedder
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex


def _words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=6)) for _ in range(n)]


def _kb(near_duplicates: bool, entries: int = 16, questions: int = 8, seed: int = 1) -> list[KBDoc]:
    """Entries whose questions share most of their words (near duplicates) or none (distant)."""
    rng = np.random.default_rng(seed)
    shared = _words(rng, 6)
    docs = []
    for e in range(entries):
        own = _words(rng, 6)
        qs = []
        for _ in range(questions):
            if near_duplicates:  # one own word among shared ones
                words = [*rng.choice(shared, size=3, replace=False), rng.choice(own)]
            else:
                words = list(rng.choice(own, size=4, replace=False))
            rng.shuffle(words)
            qs.append(" ".join(words))
        docs.append(KBDoc(id=f"e{e}", title=" ".join(own[:2]), answer=" ".join(own), questions=tuple(qs)))
    return docs


@pytest.fixture(scope="module")
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


def test_near_duplicate_entries_get_a_stricter_point_than_distant_ones(embedder: FakeEmbedder) -> None:
    near_index = KnowledgeIndex.build(_kb(near_duplicates=True), embedder, target_precision=0.9)
    far_index = KnowledgeIndex.build(_kb(near_duplicates=False), embedder, target_precision=0.9)
    near, far = near_index.operating_point, far_index.operating_point
    assert near.source == far.source == "self-calibrated"
    assert near.threshold > far.threshold
    # before shrinking towards the fallback (28 held-out questions against a prior worth 300) the
    # fitted thresholds are far apart: near duplicates confuse each other, distant entries do not
    raw = []
    for index in (near_index, far_index):
        sample = index.calibration_sample
        assert sample is not None
        point = selfcal.choose_operating_point(
            sample.confidence, sample.correct, sample.kind, 0.9, prior_questions=0
        )
        raw.append(point)
    assert raw[0].threshold > raw[1].threshold + 0.2
    assert raw[1].expected_answer_rate is not None and raw[0].expected_answer_rate is not None
    assert raw[1].expected_answer_rate > raw[0].expected_answer_rate


def test_a_higher_target_precision_never_lowers_the_threshold(embedder: FakeEmbedder) -> None:
    docs = _kb(near_duplicates=True)
    points = [
        KnowledgeIndex.build(docs, embedder, target_precision=p).operating_point for p in (0.6, 0.8, 0.95)
    ]
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(thresholds)
    assert [p.target_precision for p in points] == [0.6, 0.8, 0.95]


def test_tiny_kb_uses_the_fallback(embedder: FakeEmbedder) -> None:
    docs = _kb(near_duplicates=False, entries=selfcal.MIN_ENTRIES - 1)
    point = KnowledgeIndex.build(docs, embedder).operating_point
    assert point.source == "fallback"
    assert point.threshold == FALLBACK_THRESHOLD
    # enough entries but too few questions to hold out
    few = _kb(near_duplicates=False, entries=8, questions=2)
    assert KnowledgeIndex.build(few, embedder).operating_point.source == "fallback"
    # titles and answers only
    bare = [KBDoc(id=d.id, title=d.title, answer=d.answer) for d in _kb(near_duplicates=False)]
    assert KnowledgeIndex.build(bare, embedder).operating_point.source == "fallback"
    assert KnowledgeIndex.build([], embedder).operating_point.source == "fallback"


def test_operating_point_fields_are_sane(embedder: FakeEmbedder) -> None:
    point = KnowledgeIndex.build(_kb(near_duplicates=False), embedder, target_precision=0.9).operating_point
    assert isinstance(point, OperatingPoint)
    assert selfcal.MIN_THRESHOLD <= point.threshold <= selfcal.MAX_THRESHOLD
    assert point.target_precision == 0.9
    assert point.positives >= selfcal.MIN_POSITIVES
    assert point.negatives >= len(selfcal.oos_texts())
    for value in (
        point.expected_precision,
        point.expected_answer_rate,
        point.expected_in_scope_accuracy,
        point.expected_out_of_scope_recall,
    ):
        assert value is not None and 0.0 <= value <= 1.0
    assert point.expected_precision >= 0.9 or point.expected_answer_rate == pytest.approx(
        selfcal.MIN_ANSWER_RATE, abs=0.5
    )
    assert point.as_dict()["source"] == "self-calibrated"


def test_default_target_precision_is_used_when_none_is_given(embedder: FakeEmbedder) -> None:
    point = KnowledgeIndex.build(_kb(near_duplicates=False), embedder).operating_point
    assert point.target_precision == selfcal.DEFAULT_TARGET_PRECISION


def test_choose_operating_point_picks_the_lowest_threshold_reaching_the_target() -> None:
    # positives 0.9 (right), 0.8 (right), 0.7 (wrong entry), 0.6 (right); one far negative at 0.75
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.75], dtype=np.float32)
    correct = np.array([True, True, False, True, False])
    kind = np.array([0, 0, 0, 0, 2], dtype=np.int8)
    point = selfcal.choose_operating_point(conf, correct, kind, target_precision=0.99, prior_questions=0)
    assert point.threshold == pytest.approx(0.8)
    assert point.expected_precision == 1.0
    assert point.expected_answer_rate == 0.5
    assert point.expected_out_of_scope_recall == 1.0
    lenient = selfcal.choose_operating_point(conf, correct, kind, target_precision=0.5, prior_questions=0)
    assert lenient.threshold == pytest.approx(0.6)
    assert lenient.expected_answer_rate == 1.0


def test_a_fit_on_few_questions_is_shrunk_towards_the_fallback() -> None:
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.75], dtype=np.float32)
    correct = np.array([True, True, False, True, False])
    kind = np.array([0, 0, 0, 0, 2], dtype=np.int8)
    point = selfcal.choose_operating_point(conf, correct, kind, target_precision=0.99, prior_questions=4)
    # four positives against a prior worth four: halfway between the fit (0.8) and the fallback
    assert point.threshold == pytest.approx((0.8 + FALLBACK_THRESHOLD) / 2, abs=1e-4)
    assert point.expected_answer_rate == 1.0  # the shrunk threshold answers every positive


def test_the_fold_holds_out_questions_and_whole_entries() -> None:
    n_entries, per_entry = 30, 10
    owners = np.r_[np.repeat(np.arange(n_entries), per_entry + 1), np.arange(n_entries)]  # + passages
    is_question = np.r_[
        np.tile(np.r_[False, np.ones(per_entry, dtype=bool)], n_entries), np.zeros(n_entries, bool)
    ]
    fold = selfcal.make_fold(owners, is_question, n_entries)
    assert fold is not None
    assert fold.near_entries.size == 3  # a tenth of the entries
    assert set(owners[fold.near].tolist()) == set(fold.near_entries.tolist())
    assert not set(owners[fold.positives].tolist()) & set(fold.near_entries.tolist())
    assert is_question[fold.positives].all() and is_question[fold.near].all()
    # a fifth of each remaining entry's questions, never its title or passage
    assert fold.positives.size == (n_entries - 3) * 2
    assert np.intersect1d(fold.positives, fold.near).size == 0
    # deterministic
    again = selfcal.make_fold(owners, is_question, n_entries)
    assert again is not None and np.array_equal(again.positives, fold.positives)
