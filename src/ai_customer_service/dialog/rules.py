"""Language-aware handoff rules (contract §9.1 step 1), pure.

Chinese phrases match as substrings; Latin phrases match on word boundaries, so "humanity" is not
"human" and "refunding" is still "refund". The first matching rule wins; every rule here hands off
with priority P1 (sensitive topics and explicit requests for a person).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str
    patterns: tuple[re.Pattern[str], ...]
    # a sensitive *topic* (refund, security, complaint): the handoff reply may also carry a KB entry
    # about that topic; an explicit request for a person gets the handoff alone
    kb_answer_allowed: bool = True


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    reason: str
    matched: str


def _latin(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?:" + "|".join(phrases) + r")(?![\w])", re.IGNORECASE)


def _cjk(*phrases: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p) for p in phrases))


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "refund",
        "refund",
        (
            _cjk("退款", "退钱", "退费", "退货退款", "申请退还"),
            _latin(r"refund(?:s|ed|ing)?", r"charge\s?backs?", r"money\s+back", r"reimburse(?:ment)?"),
        ),
    ),
    Rule(
        "account_security",
        "account_security",
        (
            _cjk("被盗", "盗号", "账号安全", "帐号安全", "被黑", "异地登录", "密码泄露", "盗刷"),
            _latin(
                r"hack(?:ed|er|ers)?",
                r"stolen",
                r"compromised",
                r"account\s+security",
                r"unauthori[sz]ed\s+(?:access|login|logins|charges?|payments?|transactions?)",
                r"(?:api\s+)?keys?\s+(?:leaked|exposed)",
                r"leaked\s+(?:api\s+)?keys?",
                r"fraud(?:ulent)?",
            ),
        ),
    ),
    Rule(
        "complaint",
        "complaint",
        (
            _cjk("投诉", "举报", "差评", "律师", "起诉", "消协", "曝光你们"),
            _latin(r"complain(?:t|ts|ing)?", r"lawyer", r"lawsuit", r"sue\s+you", r"legal\s+action"),
        ),
    ),
    Rule(
        "human_request",
        "human_request",
        (
            # "人工" but not 人工智能 (artificial intelligence) or 人工审核 (manual review)
            re.compile("人工(?!智能|审核|智慧)|真人|客服人员|找客服|转客服|在线客服"),
            _latin(
                r"human(?:\s+(?:agent|support|being|operator|please))",
                r"(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s+)?(?:human|person|agent|someone|representative|operator|people)",
                r"real\s+(?:person|human|people)",
                r"live\s+(?:agent|person|support|chat)",
                r"customer\s+(?:service|support)\s+(?:agent|representative|rep)",
                r"representative",
            ),
            re.compile(r"^\s*(?:human|agent|operator|person)\s*[.!?]*\s*$", re.IGNORECASE),
        ),
        kb_answer_allowed=False,
    ),
)


def match_rules(text: str, rules: tuple[Rule, ...] = DEFAULT_RULES) -> RuleMatch | None:
    for rule in rules:
        for pattern in rule.patterns:
            found = pattern.search(text)
            if found:
                return RuleMatch(rule=rule.name, reason=rule.reason, matched=found.group(0))
    return None


def kb_answer_allowed(name: str, rules: tuple[Rule, ...] = DEFAULT_RULES) -> bool:
    """Whether a handoff by the rule called ``name`` may also carry a KB entry's answer."""
    return any(rule.kb_answer_allowed for rule in rules if rule.name == name)


def matches_rule(name: str, text: str, rules: tuple[Rule, ...] = DEFAULT_RULES) -> bool:
    """Whether ``text`` matches the rule called ``name``: e.g. whether a KB entry's title or example
    questions are about refunds."""
    return any(pattern.search(text) for rule in rules if rule.name == name for pattern in rule.patterns)
