"""Customer-facing bot texts, in the customer's language (Chinese and English)."""

from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "handoff": {
        "zh": "已为您转接人工客服，请稍候，客服人员会尽快回复您。",
        "en": "I've passed your conversation to a human agent. Someone will reply to you shortly.",
    },
    "non_text": {
        "zh": "抱歉，我暂时只能理解文字消息，请用文字描述一下您的问题。",
        "en": "Sorry, I can only read text for now. Could you please describe your question in words?",
    },
    "low_confidence": {
        "zh": "抱歉，这个问题我还不能确定答案。",
        "en": "Sorry, I'm not sure I can answer that yet.",
    },
    "index_loading": {
        "zh": "系统正在加载知识库，请稍后再问一次；如需人工服务，请回复“人工”。",
        "en": 'I\'m still loading my knowledge base. Please ask again in a moment, or reply "human agent".',
    },
    "suggestions": {"zh": "您是不是想问：", "en": "Did you mean one of these?"},
    "offer_human": {
        "zh": "如需人工服务，请回复“人工”。",
        "en": 'Reply "human agent" to talk to a person.',
    },
    "low_confidence_handoff": {
        "zh": "抱歉没能帮到您，已为您转接人工客服，请稍候。",
        "en": "Sorry I couldn't help with that. I've passed your conversation to a human agent.",
    },
}


def text(language: str, key: str) -> str:
    variants = _TEXTS[key]
    return variants.get(language) or variants["en"]
