import pytest

from ai_customer_service.dialog.rules import kb_answer_allowed, match_rules, matches_rule


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I want a refund", "refund"),
        ("Why hasn't my refund arrived?", "refund"),
        ("我要退款", "refund"),
        ("my account was hacked", "account_security"),
        ("我的账号被盗了", "account_security"),
        ("I want to file a complaint", "complaint"),
        ("我要投诉", "complaint"),
        ("human", "human_request"),
        ("can I talk to a real person", "human_request"),
        ("转人工", "human_request"),
    ],
)
def test_sensitive_topics_and_requests_for_a_person_match(text: str, rule: str) -> None:
    found = match_rules(text)
    assert found is not None and found.rule == rule


@pytest.mark.parametrize(
    "text",
    [
        "a question about humanity",
        "how do I create an API key",
        "the refundable deposit",
        "怎么重置密码",
        "你们用的是什么人工智能模型",  # 人工智能 is "artificial intelligence", not a person
        "内容需要人工审核吗",  # manual review
    ],
)
def test_latin_phrases_match_whole_words_only(text: str) -> None:
    assert match_rules(text) is None


def test_the_first_matching_rule_wins() -> None:
    found = match_rules("I was hacked, I want a refund")
    assert found is not None and found.rule == "refund"


def test_matches_rule_says_whether_a_text_is_about_that_rule() -> None:
    refund_entry = "\n".join(
        [
            "Refund policy",
            "Can unused credit be refunded?",
            "Unused prepaid credit is refunded within 30 days.",
        ]
    )
    assert matches_rule("refund", refund_entry)
    assert not matches_rule("account_security", refund_entry)
    assert not matches_rule("refund", "Payment failed\nmy card was declined")
    assert not matches_rule("no_such_rule", refund_entry)


def test_only_sensitive_topics_may_carry_a_kb_answer_with_the_handoff() -> None:
    assert all(kb_answer_allowed(name) for name in ("refund", "account_security", "complaint"))
    assert not kb_answer_allowed("human_request")  # the customer asked for a person: hand off, nothing else
    assert not kb_answer_allowed("no_such_rule")
