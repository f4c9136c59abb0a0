"""widget.js stays small, self-contained and labelled; the pure parts of the widget service."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from ai_customer_service.widget.service import normalize_origin, split_choices

STATIC = Path(__file__).parents[2] / "src" / "ai_customer_service" / "widget" / "static"


def test_widget_js_is_at_most_40_kb_gzipped() -> None:
    raw = (STATIC / "widget.js").read_bytes()
    assert len(gzip.compress(raw, compresslevel=9)) <= 40 * 1024


def test_widget_js_requests_nothing_from_third_parties() -> None:
    source = (STATIC / "widget.js").read_text("utf-8")
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.S)  # the header comment shows an example URL
    assert not re.search(r"https?://", code)
    assert "BASE + " in code  # every request goes to the origin the script was loaded from
    for forbidden in ("<iframe", "import(", "eval(", "document.write"):
        assert forbidden not in code


def test_widget_js_labels_in_both_languages() -> None:
    source = (STATIC / "widget.js").read_text("utf-8")
    for text in ('message: "Message"', 'send: "Send"', 'message: "消息"', 'send: "发送"', "attachShadow"):
        assert text in source


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Example.com", "https://example.com"),
        ("https://example.com:443/", "https://example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_origins_are_normalized(raw: str, expected: str) -> None:
    assert normalize_origin(raw) == expected


@pytest.mark.parametrize("raw", ["example.com", "ftp://example.com", "https://example.com/path", "null"])
def test_non_origins_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(raw)


def test_did_you_mean_titles_become_choices() -> None:
    text, choices = split_choices(
        "Sorry, I'm not sure I can answer that yet.\nDid you mean one of these?\n- Pricing\n- Rate limits\n"
        'Reply "human agent" to talk to a person.'
    )
    assert choices == ["Pricing", "Rate limits"]
    assert "- Pricing" not in text and "Did you mean one of these?" in text
    assert split_choices("- a list\n- in an answer") == ("- a list\n- in an answer", [])


def test_live_events_reach_visitors_without_internals() -> None:
    from ai_customer_service.widget.service import visitor_event

    at = "2026-12-06T00:00:00+00:00"
    name, data = visitor_event(
        "agent.replied",
        {"message_id": "m1", "content": "hi", "agent_id": "secret-id", "agent_name": "alice"},
        at,
    ) or ("", {})
    assert name == "message" and data["author"] == "agent" and data["author_name"] == "alice"
    assert "secret-id" not in str(data)
    bot = visitor_event(
        "reply.generated",
        {"message_id": "m2", "reply": "x", "citations": [{"id": "k", "title": "T", "score": 1}]},
        at,
    )
    assert bot is not None and bot[1]["citations"] == [{"id": "k", "title": "T"}]
    assert visitor_event("intent.resolved", {"intent": "refund", "confidence": 0.9}, at) is None
    assert visitor_event("ticket.created", {"priority": "P1"}, at) is None
    assert visitor_event("typing", {"author": "customer", "active": True}, at) is None
    assert visitor_event("typing", {"author": "agent", "active": True, "name": "alice"}, at) == (
        "typing",
        {"active": True},
    )
    assert visitor_event("ticket.assigned", {"assignee_id": "secret-id"}, at) == ("agent_joined", {})
