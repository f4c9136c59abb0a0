import json
from pathlib import Path

import pytest

from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.knowledge.formats import (
    EvalCase,
    load_cases,
    load_kb,
    parse_cases_jsonl,
    parse_front_matter,
    parse_kb_csv,
    parse_kb_jsonl,
    parse_kb_markdown,
)

DEMO = Path(__file__).resolve().parents[3] / "src" / "ai_customer_service" / "knowledge" / "demo"


def test_jsonl_good() -> None:
    text = "\n".join(
        [
            json.dumps(
                {"id": "a", "title": "A", "answer": "x", "questions": ["q1", " ", "q2"], "tags": ["t"]}
            ),
            "",
            "# comment",
            json.dumps({"title": "Reset password", "answer": "y", "locale": "en"}),
        ]
    )
    docs = parse_kb_jsonl(text, "kb.jsonl")
    assert docs[0] == KBDoc(id="a", title="A", answer="x", questions=("q1", "q2"), tags=("t",))
    assert docs[1].id == "reset-password"  # slug of the title
    assert docs[1].questions == ()
    assert docs[1].locale == "en"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "kb.jsonl:2: invalid JSON"),
        ("[1, 2]", "kb.jsonl:2: expected a JSON object"),
        ('{"id": "b", "answer": "x"}', "kb.jsonl:2: 'title' is required"),
        ('{"id": "b", "title": "B"}', "kb.jsonl:2: 'answer' is required"),
        ('{"id": "b", "title": "B", "answer": "x", "questions": "q"}', None),
        ('{"id": "b", "title": "B", "answer": "x", "questions": [1]}', "kb.jsonl:2: 'questions' must be"),
        ('{"id": "bad id!", "title": "B", "answer": "x"}', "kb.jsonl:2: 'id' must match"),
        ('{"id": "b", "title": "B", "answer": "x", "color": 1}', "kb.jsonl:2: unknown field(s) color"),
        ('{"id": "a", "title": "B", "answer": "x"}', "kb.jsonl: duplicate entry id 'a'"),
    ],
)
def test_jsonl_bad(line: str, message: str | None) -> None:
    text = json.dumps({"id": "a", "title": "A", "answer": "x"}) + "\n" + line
    if message is None:
        assert parse_kb_jsonl(text, "kb.jsonl")[1].questions == ("q",)
        return
    with pytest.raises(ValueError) as exc:
        parse_kb_jsonl(text, "kb.jsonl")
    assert str(exc.value).startswith(message)


def test_csv_good() -> None:
    text = (
        "id,title,answer,questions,locale,tags\n"
        "k1,API keys,Create one in the console,"
        '"How to create a key?|Where is my key?\n密钥在哪",en,api|keys\n'
        ",Billing,Monthly,,,\n"
    )
    docs = parse_kb_csv(text, "kb.csv")
    assert docs[0].questions == ("How to create a key?", "Where is my key?", "密钥在哪")
    assert docs[0].tags == ("api", "keys")
    assert docs[1].id == "billing"
    assert docs[1].locale is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,answer\n1,x\n", "kb.csv:1: CSV header must include"),
        ("title,answer,colour\nA,x,red\n", "kb.csv:1: unknown column(s) colour"),
        ("title,answer\nA,x\nB,\n", "kb.csv:3: 'answer' is required"),
        ("title,answer\nA,x,extra\n", "kb.csv:2: more fields than columns"),
    ],
)
def test_csv_bad(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_kb_csv(text, "kb.csv")
    assert str(exc.value).startswith(message)


MD = """---
title: Create an API key
locale: en
tags: [api, "keys"]
questions:
  - How do I create an API key?
  - 如何创建 API 密钥？
---
Go to **Console → API keys**.
"""


def test_markdown_good(tmp_path: Path) -> None:
    (tmp_path / "api-key-create.md").write_text(MD, encoding="utf-8")
    (tmp_path / "b.md").write_text("---\nid: other\ntitle: Other\n---\nBody\n", encoding="utf-8")
    (tmp_path / "ignored.txt").write_text("x", encoding="utf-8")
    docs = load_kb(tmp_path)
    assert [d.id for d in docs] == ["api-key-create", "other"]
    assert docs[0].questions == ("How do I create an API key?", "如何创建 API 密钥？")
    assert docs[0].tags == ("api", "keys")
    assert docs[0].answer == "Go to **Console → API keys**."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: x\n", "a.md:1: missing front matter"),
        ("---\ntitle: x\n", "a.md:2: front matter is not closed"),
        ("---\n  - orphan\n---\nbody", "a.md:2: list item without"),
        ("---\ntitle x\n---\nbody", "a.md:2: expected 'key: value'"),
        ("---\ntitle: a\ntitle: b\n---\nbody", "a.md:3: duplicate key 'title'"),
        ("---\ntags: [a, b\n---\nbody", "a.md:2: unterminated inline list"),
        ("---\ntitle: T\nanswer: no\n---\nbody", "a.md: the answer is the Markdown body"),
        ("---\ntitle: T\n---\n", "a.md: 'answer' is required"),
    ],
)
def test_markdown_bad(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_kb_markdown(text, "a.md", default_id="a")
    assert str(exc.value).startswith(message)


def test_front_matter_comments_and_blank_lines() -> None:
    meta, body = parse_front_matter("---\n# note\n\ntitle: 'Quoted'\n---\n\nBody", "x.md")
    assert meta == {"title": "Quoted"}
    assert body == "Body"


def test_load_kb_rejects_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "kb.xml"
    path.write_text("<kb/>", encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported KB file type"):
        load_kb(path)


def test_cases_good_and_bad() -> None:
    cases = parse_cases_jsonl('{"text": " hi ", "expected": "a"}\n{"text": "weather?", "expected": null}\n')
    assert cases == [EvalCase("hi", "a"), EvalCase("weather?", None)]
    with pytest.raises(ValueError, match=r"c\.jsonl:1: 'expected' is required"):
        parse_cases_jsonl('{"text": "x"}', "c.jsonl")
    with pytest.raises(ValueError, match=r"c\.jsonl:2: 'text' must be"):
        parse_cases_jsonl('{"text": "x", "expected": null}\n{"text": "", "expected": null}', "c.jsonl")
    with pytest.raises(ValueError, match=r"c\.jsonl:1: 'expected' must be"):
        parse_cases_jsonl('{"text": "x", "expected": 3}', "c.jsonl")


def test_demo_files_are_valid() -> None:
    docs = load_kb(DEMO / "kb.jsonl")
    cases = load_cases(DEMO / "cases.jsonl")
    ids = {d.id for d in docs}
    assert len(docs) >= 30
    assert all(len(d.questions) >= 4 for d in docs)
    assert all(c.expected is None or c.expected in ids for c in cases)
    assert sum(c.expected is None for c in cases) >= 15
