"""The LLM prompt: the customer's language only, the needed fields, a token budget."""

from __future__ import annotations

from ai_customer_service.dialog.llm import Source, build_messages, estimate_tokens
from ai_customer_service.dialog.text import detect_language

EN = [
    Source("invoices", "Invoices and receipts", "Invoices can be downloaded as PDF from Billing → Invoices."),
    Source("payment-methods", "Supported payment methods", "We accept cards, Alipay and WeChat Pay."),
    Source("top-up", "Top up your balance", "Add credit in Billing → Top up (minimum 10 USD)."),
]
ZH = [Source("invoices", "发票与收据", "可在“账单 → 发票”下载 PDF。")]


def test_a_chinese_prompt_carries_only_chinese() -> None:
    messages, kept = build_messages("怎么下载发票", ZH, (), "zh")
    system = messages[0]["content"]
    assert detect_language(system.replace("NO_ANSWER", "")) == "zh"
    assert "Invoices" not in system and "[1] 发票与收据\n可在“账单 → 发票”下载 PDF。" in system
    assert messages[-1] == {"role": "user", "content": "怎么下载发票"} and kept == ZH


def test_an_english_prompt_numbers_the_sources_in_order() -> None:
    messages, kept = build_messages("where is my invoice", EN, (), "en")
    system = messages[0]["content"]
    assert system.index("[1] Invoices") < system.index("[2] Supported") < system.index("[3] Top up")
    assert "Reply briefly, in English" in system and kept == EN


def test_the_budget_drops_runners_up_but_keeps_and_cuts_the_chosen_entry() -> None:
    long = Source("invoices", "Invoices", "Invoices are issued monthly. " * 200)
    messages, kept = build_messages("where is my invoice", [long, *EN[1:]], (), "en", budget_tokens=300)
    assert [s.entry_id for s in kept] == ["invoices"]
    assert kept[0].answer.endswith("…") and estimate_tokens(messages[0]["content"]) < 400


def test_token_estimate_counts_cjk_characters() -> None:
    assert estimate_tokens("发票与收据") == 5 and estimate_tokens("abcdefgh") == 2
