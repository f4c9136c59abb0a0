"""Cross-lingual correction: a question in a language the KB's entry does not contain is judged on
the same scale as a same-language one (issue #16).

The encoder maps a question and its translation close together, but not as close as two wordings in
the same language: an English question's best cosine to a Chinese-only entry is lower than a Chinese
question's, and BM25 finds no shared words. The confidence scale (similarity references measured on
the KB's own, same-language questions) then declines most cross-language questions. The index adds,
per query language:

- :func:`knn_offset` to the cosine between the query and every example in another language;
- :func:`fused_offset` to the fused score of every entry with no text in the query's language (the
  lexical evidence a same-language question would have had).

Both were measured on a parallel set written for the project (``bench/quality/data/parallel_zh_en.jsonl``:
customer-service questions in topic groups, each in Chinese and English; ``bench/quality/crosslingual.py``)
as the median gap between same-language and cross-language questions of the same topic, never on a
test set. Languages other than Chinese and English are detected as English (``dialog/text.py``;
Japanese with many kanji as Chinese) and get no correction: measured in docs/evaluation.md.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

# query language -> offset (cosine units) to examples in another language. Measured medians of the
# best cosine to the right entry, same-language / cross-language: Chinese KB 0.913 / 0.835, English
# KB 0.890 / 0.830 (docs/evaluation.md, fifth round).
KNN_OFFSETS = {"en": 0.078, "zh": 0.061}
# query language -> offset (fused-score units) for entries without text in that language: with the
# kNN offset applied, the remaining gap of the fused margin (BM25 and head), 2.6 and 2.2.
FUSED_OFFSETS = {"en": 2.6, "zh": 2.2}


def language_index(lang: str) -> int:
    return 1 if lang == "zh" else 0


def knn_offset(lang: str) -> float:
    return KNN_OFFSETS.get(lang, 0.0)


def fused_offset(lang: str) -> float:
    return FUSED_OFFSETS.get(lang, 0.0)
