"""The faithfulness gate between the model and the customer: pure, no I/O.

A generated answer reaches the customer only when every check passes, in this order (the first
failure is the rejection's reason, a label of ``cs_llm_gate_rejections_total``):

``truncated``            the completion did not end normally (``finish_reason`` other than ``stop``,
                         e.g. ``length`` at the token cap), or it ends inside a marker (``… [8``);
``no_answer``            the model said the entries do not answer the question (``NO_ANSWER``) or
                         returned nothing;
``bad_citation``         a ``[n]`` marker points outside the numbered entries it was given;
``no_citation``          no ``[n]`` marker at all;
``missing_chosen_entry`` the entry the decision chose is not among the cited ones;
``wrong_language``       the reply's language is not the question's;
``unsupported``          a sentence is not supported by the entries it cites: too few of its content
                         tokens (CJK-aware: jieba words and character bigrams, see
                         :mod:`ai_customer_service.dialog.text`) occur in the cited entries' text, or
                         it states a number the cited entries do not contain.

An accepted answer's markers are renumbered so ``[n]`` is item n of the returned citation list
(first appearance order): ``"[2] … [1]"`` becomes ``"[1] … [2]"``.

:data:`SUPPORT_THRESHOLDS` were chosen on the labelled sentences in ``bench/quality/gate_sentences.jsonl``
(faithful paraphrases versus invented sentences, Chinese and English); the numbers are in
``docs/llm.md`` and ``bench/quality/gate.py`` reproduces them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ai_customer_service.dialog.text import detect_language, normalize, tokenize

# Share of a sentence's content tokens that must occur in the cited entries' text, by language:
# Chinese tokens include character bigrams, so a paraphrase shares more of them than an English one
# shares stemmed words, and invented Chinese sentences already fall below 0.3 (docs/llm.md).
SUPPORT_THRESHOLDS = {"en": 0.7, "zh": 0.4}
NO_ANSWER = "NO_ANSWER"

_MARKER = re.compile(r"\[(\d{1,3})\]")
_OPEN_MARKER_AT_END = re.compile(r"\[\d*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])|\n+")
_ENUMERATOR = re.compile(r"^\d{1,2}(?:[.)、]|\.(?=\s|$))\s*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# sentences made only of these words are courtesy or layout, not claims ("Hope this helps!",
# "希望对您有帮助", "Follow these steps:")
_COURTESY = frozenset(
    tokenize(
        "hope helps help glad happy assist let know further questions question anything else feel free "
        "contact sure course great welcome sorry inconvenience step steps following follow here "
        "希望 对您 有帮助 帮助 您好 你好 谢谢 感谢 其他 问题 随时 联系 祝您 愉快 如有 疑问 欢迎 "
        "步骤 如下 以下"
    )
)


class Rejection(StrEnum):
    TRUNCATED = "truncated"
    NO_ANSWER = "no_answer"
    BAD_CITATION = "bad_citation"
    NO_CITATION = "no_citation"
    MISSING_CHOSEN_ENTRY = "missing_chosen_entry"
    WRONG_LANGUAGE = "wrong_language"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class GateSource:
    """A numbered entry as the model saw it: id and the text in the customer's language."""

    entry_id: str
    text: str


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: Rejection | None = None
    text: str = ""  # the renumbered answer (accepted only)
    cited: tuple[str, ...] = ()  # entry ids; [n] in ``text`` is cited[n-1]
    support: float | None = None  # the weakest sentence's support (when measured)
    detail: str = ""  # why, for the log (e.g. the unsupported sentence)


def _reject(reason: Rejection, detail: str = "", support: float | None = None) -> Verdict:
    return Verdict(False, reason, support=support, detail=detail[:200])


def sentences(text: str) -> list[str]:
    """Split an answer into sentences (Latin and CJK punctuation, line breaks, list items); a list
    item's number ("1.", "2)", "3、") is layout, not a claim, and is dropped."""
    parts = (_ENUMERATOR.sub("", p.strip(" \t-*•>#")) for p in _SENTENCE_END.split(text))
    return [p for p in parts if p and _MARKER.sub("", p).strip(" .。")]


def content_tokens(text: str) -> set[str]:
    return set(tokenize(_MARKER.sub(" ", text)))


def numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(normalize(_MARKER.sub(" ", text))))


def support(sentence: str, evidence: str) -> float:
    """Share of the sentence's content tokens found in ``evidence`` (1.0 for a sentence without any)."""
    tokens = content_tokens(sentence)
    if not tokens:
        return 1.0
    return len(tokens & content_tokens(evidence)) / len(tokens)


def sentence_supported(sentence: str, evidence: str, threshold: float) -> tuple[bool, float]:
    tokens = content_tokens(sentence)
    if tokens and tokens <= _COURTESY:
        return True, 1.0
    score = support(sentence, evidence)
    if numbers(sentence) - numbers(evidence):
        return False, score
    return score >= threshold, score


def check(
    text: str,
    *,
    finish_reason: str | None,
    sources: Sequence[GateSource],
    chosen: str,
    language: str,
    threshold: float | None = None,
) -> Verdict:
    """Accept or reject one completion; see the module docstring for the checks and their order."""
    if threshold is None:
        threshold = SUPPORT_THRESHOLDS.get(language, max(SUPPORT_THRESHOLDS.values()))
    text = text.strip()
    if finish_reason != "stop" or _OPEN_MARKER_AT_END.search(text):
        return _reject(Rejection.TRUNCATED, f"finish_reason={finish_reason}")
    if not text or NO_ANSWER in text:
        return _reject(Rejection.NO_ANSWER)
    markers = [int(m) for m in _MARKER.findall(text)]
    out_of_range = [m for m in markers if not 1 <= m <= len(sources)]
    if out_of_range:
        return _reject(Rejection.BAD_CITATION, f"markers {out_of_range} with {len(sources)} entries")
    if not markers:
        return _reject(Rejection.NO_CITATION)
    order = list(dict.fromkeys(markers))  # source numbers in first-appearance order
    cited_ids = list(dict.fromkeys(sources[m - 1].entry_id for m in order))
    if chosen not in cited_ids:
        return _reject(Rejection.MISSING_CHOSEN_ENTRY, f"cited {cited_ids}, chose {chosen}")
    if detect_language(_MARKER.sub(" ", text)) != language:
        return _reject(Rejection.WRONG_LANGUAGE, f"expected {language}")

    all_cited = "\n".join(sources[m - 1].text for m in order)
    weakest = 1.0
    for sentence in sentences(text):
        own = [int(m) for m in _MARKER.findall(sentence)]
        evidence = "\n".join(sources[m - 1].text for m in dict.fromkeys(own)) if own else all_cited
        ok, score = sentence_supported(sentence, evidence, threshold)
        weakest = min(weakest, score)
        if not ok:
            return _reject(Rejection.UNSUPPORTED, sentence, support=round(score, 4))

    number_of = {entry_id: i for i, entry_id in enumerate(cited_ids, start=1)}
    renumbered = _MARKER.sub(lambda m: f"[{number_of[sources[int(m.group(1)) - 1].entry_id]}]", text)
    return Verdict(True, None, renumbered, tuple(cited_ids), round(weakest, 4))
