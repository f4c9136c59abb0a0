"""The Chinese operator pages keep up with their English originals.

Every technical name an English page gives an operator — console-script commands and `make` targets,
``AI_CS_*`` variables, ``CS_*`` error codes, HTTP paths, ``X-*`` headers, ``cs_*`` tables and metrics
— must appear in its Chinese counterpart, spelled exactly the same. Prose is free; names are not.

To add an operator page: write ``docs/<page>.md``, add its pair to ``PAIRS``, write
``docs/zh-CN/<page>.md`` (first line links to the English page; the English page's first line links
to it). A pair whose English page exists but whose Chinese page does not fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The one list of English operator pages and their Chinese counterparts (paths from the repo root).
PAIRS: tuple[tuple[str, str], ...] = (
    ("README.md", "README.zh-CN.md"),
    ("docs/RUNBOOK.md", "docs/zh-CN/RUNBOOK.md"),
    ("docs/configuration.md", "docs/zh-CN/configuration.md"),
    ("docs/security.md", "docs/zh-CN/security.md"),
    ("docs/migrating-from-go.md", "docs/zh-CN/migrating-from-go.md"),
)

FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)

VARIABLE = re.compile(r"(?<![A-Za-z0-9_])AI_CS_(?:[A-Z0-9_]|<[A-Z]+>)+")
ERROR_CODE = re.compile(r"(?<![A-Za-z0-9_])CS_[A-Z]+_\d{3,4}(?!\d)")
HEADER = re.compile(r"(?<![\w-])X-(?:CS-[A-Za-z]+(?:-[A-Za-z]+)*|Request-ID)(?![\w-])")
DB_NAME = re.compile(r"(?<![\w./-])cs_[a-z][a-z0-9_]*[a-z0-9](?![\w-])")
# HTTP paths: anything under /api or /actuator (bare or after a host), the fixed top-level endpoints,
# and `GET /path`-style mentions of shorter API paths.
API_PATH = re.compile(
    r"(?<![\w/.-])(?:https?://[\w.:-]+|localhost:\d+)?"
    r"(?P<path>/(?:api|actuator)(?:/[\w.{}$<>:-]+)*|/(?:metrics|docs|redoc|openapi\.json)(?![\w/.-]))"
)
METHOD_PATH = re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE)\s+`?(?P<path>/[\w/{}$<>.:-]+)")
# commands are looked for in code only (fenced blocks and `spans`), where they are meant literally
CLI = re.compile(r"(?<![\w.-])(?:[\w.-]*/)*ai-customer-service(?![\w-])(?P<rest>[^\n]*)")
MAKE = re.compile(r"(?<![\w./-])make[ \t]+(?P<target>[a-z][a-z-]*)(?![\w-])")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s#]+)(?:#[^)]*)?\)")

CATEGORIES = ("commands", "variables", "error codes", "HTTP paths", "headers", "tables and metrics")


@dataclass(frozen=True)
class Names:
    by_category: dict[str, frozenset[str]]

    def missing_from(self, other: Names) -> dict[str, list[str]]:
        missing = {}
        for category in CATEGORIES:
            gone = sorted(self.by_category[category] - other.by_category[category])
            if gone:
                missing[category] = gone
        return missing


def code_of(markdown: str) -> list[str]:
    """Fenced blocks, then inline code spans of the text outside them."""
    blocks = [m.group(2) for m in FENCE.finditer(markdown)]
    outside = FENCE.sub("", markdown)
    return blocks + [m.group(2) for m in CODE_SPAN.finditer(outside)]


def command_signature(rest: str) -> str:
    """``ai-customer-service`` + its subcommand words (at most two: the CLI nests no deeper) + its flags
    (values dropped, order kept).

    ``ai-customer-service agents create --name ops-admin --role admin`` →
    ``ai-customer-service agents create --name --role``.
    """
    words: list[str] = ["ai-customer-service"]
    if rest and not rest[0].isspace():  # `ai-customer-service==1.0.0`, `"ai-customer-service"`
        return words[0]
    flags_started = False
    for raw in rest.split():
        if raw[0] in "|>&;#)`" or raw.startswith(("2>", "1>")):
            break
        token = raw.strip("[]").rstrip(")\"';,")
        if not token:
            continue
        if re.fullmatch(r"--?[a-z][a-z-]*(=.*)?", token):
            flag = token.split("=", 1)[0]
            if flag not in words:
                words.append(flag)
            flags_started = True
        elif not flags_started and len(words) < 3 and re.fullmatch(r"[a-z][a-z-]*", token):
            words.append(token)
        elif not flags_started:
            flags_started = True  # a value (FILE, <EVENT_ID>, a quoted name): only flags may follow
        if raw.endswith((")", ";")):  # the end of `$(...)` or of a statement
            break
    return " ".join(words)


def command_known(signature: str, known: frozenset[str]) -> bool:
    """The subcommand exists in ``known`` and each of its flags is used with it somewhere there."""
    words = signature.split()
    sub = [w for w in words if not w.startswith("-")]
    flags = {w for w in words if w.startswith("-")}
    known_flags: set[str] = set()
    found = False
    for other in known:
        other_words = other.split()
        if [w for w in other_words if not w.startswith("-")] == sub:
            found = True
            known_flags |= {w for w in other_words if w.startswith("-")}
    return found and flags <= known_flags


def names_in(markdown: str) -> Names:
    code = "\n".join(code_of(markdown))
    commands = {command_signature(m.group("rest")) for m in CLI.finditer(code)}
    commands |= {f"make {m.group('target')}" for m in MAKE.finditer(code)}
    paths = {m.group("path") for m in API_PATH.finditer(markdown)}
    paths |= {m.group("path").split("?")[0] for m in METHOD_PATH.finditer(markdown)}
    return Names(
        {
            "commands": frozenset(commands),
            "variables": frozenset(v.rstrip("_") for v in VARIABLE.findall(markdown)),
            "error codes": frozenset(ERROR_CODE.findall(markdown)),
            "HTTP paths": frozenset(p.split("?")[0].rstrip(".:") for p in paths),
            "headers": frozenset(HEADER.findall(markdown)),
            "tables and metrics": frozenset(DB_NAME.findall(markdown)),
        }
    )


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


@pytest.mark.parametrize(("english", "chinese"), PAIRS, ids=[english for english, _ in PAIRS])
def test_the_chinese_page_keeps_up_with_the_english_page(english: str, chinese: str) -> None:
    if not (ROOT / english).exists():
        pytest.skip(f"{english} does not exist (yet); {chinese} is required once it does")
    assert (ROOT / chinese).exists(), (
        f"{english} is an operator page but its Chinese version {chinese} is missing: translate it "
        f"(keep every command, AI_CS_* variable, CS_* code and path as is), and link the two pages "
        f"from each other's first line; the pair list is PAIRS in {Path(__file__).relative_to(ROOT)}"
    )
    problems = [
        *drift(english, chinese),
        *invented_names(chinese),
        *missing_cross_links(english, chinese),
        *broken_links(chinese),
    ]
    assert not problems, "\n".join(problems)


def drift(english: str, chinese: str) -> list[str]:
    missing = names_in(read(english)).missing_from(names_in(read(chinese)))
    if not missing:
        return []
    return [
        f"{chinese} has drifted from {english}: these names appear in {english} but not in {chinese} "
        f"(add them, spelled exactly as in {english}):",
        *(f"  {category}: {', '.join(names)}" for category, names in missing.items()),
    ]


def invented_names(chinese: str) -> list[str]:
    """A variable, code, header or command in a Chinese page exists in the English docs (no typos)."""
    known = names_in("\n".join(p.read_text(encoding="utf-8") for p in english_docs()))
    unknown = names_in(read(chinese)).missing_from(known)
    commands = [c for c in unknown.pop("commands", []) if not command_known(c, known.by_category["commands"])]
    if commands:
        unknown["commands"] = commands
    unknown.pop("HTTP paths", None)  # a Chinese page may show a fuller URL of a documented endpoint
    unknown.pop("tables and metrics", None)
    if not unknown:
        return []
    return [
        f"{chinese} names things no English page does (a typo, or a name the English docs lack):",
        *(f"  {category}: {', '.join(names)}" for category, names in unknown.items()),
    ]


def missing_cross_links(english: str, chinese: str) -> list[str]:
    problems = []
    for page, other in ((english, chinese), (chinese, english)):
        top = "\n".join(read(page).splitlines()[:3])
        targets = {(ROOT / page).parent.joinpath(m.group("target")).resolve() for m in LINK.finditer(top)}
        if (ROOT / other).resolve() not in targets:
            problems.append(f"the first three lines of {page} must link to {other}")
    return problems


def broken_links(chinese: str) -> list[str]:
    page = ROOT / chinese
    broken = [
        m.group("target")
        for m in LINK.finditer(FENCE.sub("", page.read_text(encoding="utf-8")))
        if "://" not in m.group("target") and not (page.parent / m.group("target")).exists()
    ]
    return [f"{chinese} links to files that do not exist: {', '.join(broken)}"] if broken else []


def english_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# --- the extraction itself: it must find what it is meant to, and nothing else ---------------------


def test_extraction_finds_each_kind_of_name() -> None:
    sample = """
Set `AI_CS_PLATFORM_<NAME>_CALLBACK_SECRET` and AI_CS_WEBHOOK_SECRET; a bad one is 403 `CS_AUTH_4034`,
see GET /tickets?status=open and `X-CS-Signature`; `cs_outbox_oldest_pending_age_seconds` grows.

```bash
curl -s http://localhost:8080/actuator/health/ready   # UP
curl -s localhost:8080/metrics | grep cs_outbox_
TOKEN=$(ai-customer-service agents create --name ops-admin --role admin | tail -1)
echo "from $(ai-customer-service --version) to 1.0.0"
.venv/bin/ai-customer-service doctor [--url URL] [--log-file F]
ai-customer-service agents revoke ops-admin
pip install ai-customer-service==1.0.0; make test-pg
```
See docs/api.md and ../docs/RUNBOOK.md (no paths there); `ai-customer-service kb import FILE`.
"""
    names = names_in(sample).by_category
    assert names["variables"] == {"AI_CS_PLATFORM_<NAME>_CALLBACK_SECRET", "AI_CS_WEBHOOK_SECRET"}
    assert names["error codes"] == {"CS_AUTH_4034"}
    assert names["HTTP paths"] == {"/tickets", "/actuator/health/ready", "/metrics"}
    assert names["headers"] == {"X-CS-Signature"}
    assert names["tables and metrics"] == {"cs_outbox_oldest_pending_age_seconds"}
    assert names["commands"] == {
        "ai-customer-service agents create --name --role",
        "ai-customer-service agents revoke",
        "ai-customer-service --version",
        "ai-customer-service doctor --url --log-file",
        "ai-customer-service",
        "ai-customer-service kb import",
        "make test-pg",
    }


def test_a_missing_name_is_reported_by_category() -> None:
    english = names_in("`ai-customer-service migrate --sql` then 400 `CS_REQ_4001`, `AI_CS_ADDR`")
    chinese = names_in("执行 `ai-customer-service migrate`，返回 400 `CS_REQ_4001`")
    assert english.missing_from(chinese) == {
        "commands": ["ai-customer-service migrate --sql"],
        "variables": ["AI_CS_ADDR"],
    }
    known = names_in("`ai-customer-service doctor --url U --log-file F`").by_category["commands"]
    assert command_known("ai-customer-service doctor --url", known)
    assert not command_known("ai-customer-service doctor --uri", known)
    assert not command_known("ai-customer-service doktor", known)
    # prose mentioning the program is not a command; `make` in prose is not a target
    assert names_in("make ai_cs the owner of ai-customer-service").by_category["commands"] == frozenset()
