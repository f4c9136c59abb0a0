"""Cross-lingual correction (dialog/crosslingual.py): a question in a language an entry lacks is
scored with the fitted offsets; same-language questions are untouched."""

import numpy as np
import pytest

from ai_customer_service.dialog import crosslingual
from ai_customer_service.dialog.embedding import FakeEmbedder
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex

DOCS = [
    KBDoc(
        id="refund",
        title="退款进度",
        answer="退款三到五个工作日到账。",
        questions=("退款什么时候到账", "退款还没到"),
    ),
    KBDoc(
        id="password",
        title="重置密码",
        answer="在登录页点击忘记密码。",
        questions=("忘记密码怎么办", "怎么改密码"),
    ),
    KBDoc(
        id="both",
        title="Invoices 发票",
        answer="Billing page 账单页面",
        questions=("invoice please", "怎么开发票"),
    ),
]


def _index(monkeypatch: pytest.MonkeyPatch, knn: float, fused: float) -> KnowledgeIndex:
    monkeypatch.setattr(crosslingual, "KNN_OFFSETS", {"en": knn, "zh": knn})
    monkeypatch.setattr(crosslingual, "FUSED_OFFSETS", {"en": fused, "zh": fused})
    return KnowledgeIndex.build(DOCS, FakeEmbedder())


def test_offsets_apply_to_other_language_examples_and_entries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _index(monkeypatch, 0.0, 0.0)
    shifted = _index(monkeypatch, 0.1, 1.5)
    en, zh = "when do I get my refund", "退款什么时候到"
    a, b = plain.score_all(en), shifted.score_all(en)
    # Chinese-only entries: every example is in another language
    np.testing.assert_allclose(b["knn"][:2], a["knn"][:2] + 0.1, atol=1e-5)
    # the only fused-score bonus goes to entries without English text
    bonus = (b["fused"] - a["fused"]) - 20.0 * (b["knn"] - a["knn"])
    np.testing.assert_allclose(bonus[:2], [1.5, 1.5], atol=1e-4)
    assert abs(bonus[2]) < 1e-4
    # a Chinese question to Chinese entries is scored exactly as before
    c, d = plain.score_all(zh), shifted.score_all(zh)
    np.testing.assert_allclose(c["fused"][:2], d["fused"][:2], atol=1e-5)
    np.testing.assert_allclose(c["knn"][:2], d["knn"][:2], atol=1e-5)


def test_shipped_offsets_raise_cross_language_confidence_only() -> None:
    assert crosslingual.knn_offset("en") >= 0.0 and crosslingual.knn_offset("zh") >= 0.0
    assert crosslingual.fused_offset("fr") == 0.0  # unknown languages: no correction
    assert crosslingual.language_index("zh") == 1 and crosslingual.language_index("en") == 0
