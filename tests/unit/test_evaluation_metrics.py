from __future__ import annotations

from ai_customer_service.dialog.knowledge_dialog import answer_in, title_in, title_parts
from ai_customer_service.knowledge.evaluation import CaseResult, compute_metrics


def test_metrics_follow_the_contract_definitions() -> None:
    results = [
        CaseResult("a", "a", 10.0),  # in scope, right
        CaseResult("b", "a", 20.0),  # in scope, wrong answer
        CaseResult("c", None, 30.0),  # in scope, declined
        CaseResult(None, None, 40.0),  # out of scope, declined
        CaseResult(None, "a", 50.0),  # out of scope, answered (wrong)
        CaseResult("d", None, 30.0, rule="refund"),  # in scope, handed off by a rule
        CaseResult(None, None, 30.0, rule="human_request"),  # out of scope, handed off by a rule
    ]
    m = compute_metrics(results)
    assert m["cases"] == 7
    assert m["in_scope_accuracy"] == 0.25
    assert m["out_of_scope_recall"] == round(2 / 3, 4)
    assert m["answer_precision"] == round(1 / 3, 4)
    assert m["answer_rate"] == round(3 / 7, 4)
    assert m["rule_handoffs"] == 2 and m["in_scope_rule_handoffs"] == 1
    assert m["latency_ms_p50"] == 30.0
    assert 40.0 < m["latency_ms_p95"] <= 50.0


def test_metrics_without_cases_of_a_kind_are_null() -> None:
    m = compute_metrics([CaseResult("a", "a", 1.0)])
    assert m["out_of_scope_recall"] is None and m["in_scope_accuracy"] == 1.0


def test_bilingual_answers_are_served_in_the_customer_language() -> None:
    answer = "Open the console.\n---\n打开控制台。"
    assert answer_in(answer, "en") == "Open the console."
    assert answer_in(answer, "zh") == "打开控制台。"
    assert answer_in("Only English.", "zh") == "Only English."


def test_bilingual_titles_are_shown_in_the_customer_language() -> None:
    title = "Create an account --- 注册账号"
    assert title_parts(title) == ["Create an account", "注册账号"]
    assert title_in(title, "zh") == "注册账号"
    assert title_in(title, "en") == "Create an account"
    assert title_in("Pricing", "zh") == "Pricing"
    assert title_parts("Error 500 - server errors") == ["Error 500 - server errors"]
