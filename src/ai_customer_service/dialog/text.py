"""Text utilities for retrieval: normalisation, zh/en language detection and a BM25 tokenizer.

The tokenizer handles Latin script (lower-cased word tokens with a light suffix stemmer) and
Chinese (jieba search-mode segmentation plus character bigrams), so mixed text such as
"我的API key 失效了" yields tokens from both scripts. jieba is loaded lazily, once, on first use,
with its logging silenced; importing this module has no side effects.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from typing import Any, Literal

Language = Literal["zh", "en"]

_CJK_RANGES = (
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x2FA1F),  # Extensions B.. and compatibility supplement
)

# A run of CJK ideographs, or a run of letters/digits (any non-CJK script).
_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(
    rf"([{_CJK_CLASS}]+)|([^\W_{_CJK_CLASS}]+(?:['’][^\W_{_CJK_CLASS}]+)?)",
    re.UNICODE,
)
_WS_RE = re.compile(r"\s+")

# Very common function words that carry no topical signal. Kept deliberately short: BM25's IDF
# already discounts frequent words; this list only removes the worst offenders.
_EN_STOP_WORDS = """
a an the and or but if of to in on at by for with from as is are was were be been being am
i me my we our you your he she it its they them their this that these those there here
do does did doing have has had having can could would should will shall may might must
what which who whom how why when where please hi hello thanks thank just so than too very
not no yes any some all about into out up down over again then once also
"""
_ZH_STOP_WORDS = """
的 了 吗 呢 吧 啊 呀 嘛 么 是 在 我 你 他 她 它 我们 你们 请 请问 一下 怎么 如何 什么 为什么
可以 能 能否 要 想 我想 这个 那个 这 那 和 与 及 或 就 都 也 还 有 没有 会 给 把 被 让 对 从 到
个 哪里 哪 里
"""
_EN_STOP = frozenset(_EN_STOP_WORDS.split())
_ZH_STOP = frozenset(_ZH_STOP_WORDS.split())

_jieba_lock = threading.Lock()
_jieba_tokenizer: Any = None


def normalize(text: str) -> str:
    """NFKC-normalise (full-width → half-width), lower-case and collapse whitespace."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


# One CJK ideograph (the ranges of _CJK_RANGES): cjk_ratio counts them in C, not per character in Python.
_CJK_CHAR_RE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the letter/ideograph characters of ``text`` (0 when none)."""
    letters = sum(map(str.isalpha, text))
    if not letters:
        return 0.0
    # an unassigned code point inside the ranges is no letter: counted as neither (as _is_cjk on letters)
    return sum(map(str.isalpha, _CJK_CHAR_RE.findall(text))) / letters


def detect_language(text: str, threshold: float = 0.2) -> Language:
    """Return ``"zh"`` when at least ``threshold`` of the letters are CJK ideographs, else ``"en"``.

    A single Chinese character is worth several Latin letters of content, so a low ratio is enough:
    "我的API key不能用" is Chinese.
    """
    return "zh" if cjk_ratio(text) >= threshold else "en"


def _jieba() -> Any:
    """The process-wide jieba tokenizer, initialised on first use without printing anything."""
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import jieba

                logger = logging.getLogger("jieba")
                previous = logger.level
                logger.setLevel(logging.ERROR)
                try:
                    tok = jieba.Tokenizer()
                    tok.initialize()
                finally:
                    logger.setLevel(previous)
                _jieba_tokenizer = tok
    return _jieba_tokenizer


def stem(word: str) -> str:
    """A light English suffix stripper (plural, -ing, -ed, -ly, final -e); conservative on short words.

    It only needs to map inflections of one word to the same token ("charge", "charged",
    "charges", "charging" → "charg"), not to produce real words.
    """
    if not word.isascii() or len(word) <= 3:
        return word
    for suffix, min_len, repl in (
        ("ies", 5, "y"),
        ("sses", 6, "ss"),
        ("ing", 6, ""),
        ("ed", 5, ""),
        ("ly", 5, ""),
        ("s", 4, ""),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: len(word) - len(suffix)] + repl
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _cjk_tokens(run: str) -> list[str]:
    tokens = [w for w in _jieba().cut_for_search(run) if w not in _ZH_STOP]
    # Character bigrams make matching robust to segmentation differences between query and KB.
    tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    if len(run) == 1 and run not in _ZH_STOP:
        tokens.append(run)
    return tokens


def tokenize(text: str) -> list[str]:
    """Tokens for lexical retrieval (BM25) of mixed Chinese/Latin text."""
    tokens: list[str] = []
    for cjk, word in _TOKEN_RE.findall(normalize(text)):
        if cjk:
            tokens.extend(_cjk_tokens(cjk))
        else:
            word = word.replace("’", "'").split("'")[0]
            if word and word not in _EN_STOP:
                tokens.append(stem(word))
    return tokens
