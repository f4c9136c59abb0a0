"""The faithfulness gate on the exact defects of issue #17 (pure, no model)."""

from __future__ import annotations

from ai_customer_service.dialog.gate import GateSource, Rejection, Verdict, check, sentences

INVOICES = GateSource(
    "invoices",
    "Invoices and receipts\n"
    "Invoices are issued monthly and can be downloaded as PDF from Billing → Invoices.",
)
PAYMENT = GateSource(
    "payment-methods",
    "Supported payment methods\nWe accept credit cards, Alipay and WeChat Pay. "
    "Manage them in Billing → Payment methods.",
)
ZH_INVOICES = GateSource("invoices", "发票与收据\n后付费每月开具发票，可在“账单 → 发票”下载 PDF。")


def run(text: str, *, finish: str | None = "stop", chosen: str = "invoices", language: str = "en") -> Verdict:
    sources = [ZH_INVOICES] if language == "zh" else [INVOICES, PAYMENT]
    return check(text, finish_reason=finish, sources=sources, chosen=chosen, language=language)


def test_a_faithful_answer_is_accepted_with_its_citations() -> None:
    verdict = run("You can download invoices as PDF from Billing → Invoices [1].")
    assert verdict.accepted and verdict.cited == ("invoices",)
    assert verdict.text.endswith("[1].") and verdict.support is not None and verdict.support >= 0.7


def test_a_cut_off_answer_is_rejected() -> None:
    cut = "Invoices are issued monthly and can be downloaded as PDF [8"
    assert run(cut, finish="length").reason is Rejection.TRUNCATED
    # even when the server claims it stopped, a dangling marker means the text was cut
    assert run(cut, finish="stop").reason is Rejection.TRUNCATED
    assert run("Invoices are issued monthly [1].", finish=None).reason is Rejection.TRUNCATED


def test_an_invented_sentence_with_a_valid_marker_is_rejected() -> None:
    verdict = run("I made this up [1]")
    assert verdict.reason is Rejection.UNSUPPORTED and not verdict.accepted
    mixed = run("Invoices can be downloaded as PDF [1]. Paper invoices are mailed every quarter [1].")
    assert mixed.reason is Rejection.UNSUPPORTED and "Paper" in mixed.detail


def test_an_invented_number_is_rejected() -> None:
    assert run("Invoices are issued every 3 months as PDF [1].").reason is Rejection.UNSUPPORTED


def test_mis_numbered_markers_are_renumbered_to_match_the_list() -> None:
    verdict = run(
        "We accept credit cards, Alipay and WeChat Pay [2]. Invoices can be downloaded as PDF from "
        "Billing → Invoices [1]."
    )
    assert verdict.accepted, verdict
    assert verdict.cited == ("payment-methods", "invoices")
    assert "WeChat Pay [1]." in verdict.text and "Billing → Invoices [2]." in verdict.text


def test_an_out_of_range_marker_is_rejected() -> None:
    assert run("Invoices can be downloaded as PDF [1] [3].").reason is Rejection.BAD_CITATION


def test_no_marker_is_rejected() -> None:
    assert run("Invoices can be downloaded as PDF from Billing.").reason is Rejection.NO_CITATION


def test_the_chosen_entry_must_be_cited() -> None:
    verdict = run("We accept credit cards, Alipay and WeChat Pay [2].", chosen="invoices")
    assert verdict.reason is Rejection.MISSING_CHOSEN_ENTRY


def test_the_reply_must_be_in_the_questions_language() -> None:
    assert run("发票可以下载 [1]。", language="en").reason is Rejection.WRONG_LANGUAGE
    assert run("Invoices can be downloaded as PDF [1].", language="zh").reason is Rejection.WRONG_LANGUAGE


def test_chinese_answers_are_checked_with_cjk_tokens() -> None:
    assert run("后付费每月开具发票，可以在账单的发票页面下载 PDF [1]。", language="zh").accepted
    assert run("纸质发票每季度邮寄到您的办公地址 [1]。", language="zh").reason is Rejection.UNSUPPORTED


def test_no_answer_and_courtesy() -> None:
    assert run("NO_ANSWER").reason is Rejection.NO_ANSWER
    assert run("").reason is Rejection.NO_ANSWER
    assert run("You can download invoices as PDF [1]. Hope this helps!").accepted


def test_sentences_split_latin_cjk_and_lists() -> None:
    assert sentences("One [1]. Two! 三。四\n- five") == ["One [1].", "Two!", "三。", "四", "five"]
    assert sentences("1. Check spam [1].\n2) Wait 5 minutes [1].") == [
        "Check spam [1].",
        "Wait 5 minutes [1].",
    ]


def test_list_numbers_are_layout_not_claims() -> None:
    assert run("Steps:\n1. Invoices are issued monthly [1].\n2. Download them as PDF [1].").accepted
