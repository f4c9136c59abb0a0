"""Tiny, dependency-free language guess: Chinese when CJK characters dominate, else English."""

from __future__ import annotations


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def detect_language(text: str) -> str:
    """``"zh"`` when at least a fifth of the letters are CJK ideographs, else ``"en"``."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for ch in letters if is_cjk(ch))
    return "zh" if cjk * 5 >= len(letters) else "en"
