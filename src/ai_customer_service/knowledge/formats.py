"""Parsers for knowledge-base import files and evaluation cases.

Accepted KB formats (see contract §9.5):

- **JSONL**: one object per line, ``{"id", "title", "answer", "questions": [...], "locale"?, "tags"?}``.
  Blank lines and lines starting with ``#`` or ``//`` are skipped.
- **CSV** (header row required): ``title`` and ``answer`` columns, optional ``id``, ``questions``
  (separated by ``|`` or newlines), ``locale``, ``tags`` (separated by ``|`` or ``,``).
- **Markdown folder**: one entry per ``*.md`` file, with front matter between ``---`` lines::

      ---
      id: api-key-create            (optional; defaults to the file name without .md)
      title: Create an API key
      locale: en                    (optional)
      tags: [api, keys]             (inline list, or a block list of "- item" lines)
      questions:
        - How do I create an API key?
        - 如何创建 API 密钥？
      ---
      Markdown answer body...

  The front matter parser is deliberately small and strict: ``key: value`` scalars, ``[a, b]``
  inline lists and ``- item`` block lists; anything else is an error naming file and line.

Every parser returns :class:`~ai_customer_service.dialog.index.KBDoc` records and raises
``ValueError("<file>:<line>: <problem>")`` on bad input.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_customer_service import safejson
from ai_customer_service.dialog.index import KBDoc

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_KNOWN_KEYS = frozenset({"id", "title", "answer", "questions", "locale", "tags"})


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One labelled evaluation case: ``expected`` is an entry id, or ``None`` for out of scope."""

    text: str
    expected: str | None


def slug(text: str, max_length: int = 64) -> str:
    """The lowercase ASCII words of ``text`` joined by ``-``, at most ``max_length`` characters
    ("" when it has none): the key of an entry given without one."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))[:max_length]


def _str_list(value: Any, field: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: '{field}' must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def doc_from_mapping(data: Mapping[str, Any], where: str, default_id: str | None = None) -> KBDoc:
    """Validate one entry given as a mapping and build a :class:`KBDoc`. ``where`` prefixes errors."""
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"{where}: 'title' is required and must be a non-empty string")
    answer = data.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{where}: 'answer' is required and must be a non-empty string")
    raw_id = data.get("id")
    if raw_id is None or raw_id == "":
        raw_id = default_id or slug(title) or "entry"
    if not isinstance(raw_id, str) or not _ID_RE.match(raw_id):
        raise ValueError(f"{where}: 'id' must match {_ID_RE.pattern}, got {raw_id!r}")
    locale = data.get("locale")
    if locale is not None and (not isinstance(locale, str) or len(locale) > 16):
        raise ValueError(f"{where}: 'locale' must be a short string such as 'en' or 'zh-CN'")
    return KBDoc(
        id=raw_id,
        title=title.strip(),
        answer=answer.strip(),
        questions=_str_list(data.get("questions"), "questions", where),
        locale=locale or None,
        tags=_str_list(data.get("tags"), "tags", where),
    )


def _check_unique(docs: list[KBDoc], source: str) -> list[KBDoc]:
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise ValueError(f"{source}: duplicate entry id {doc.id!r}")
        seen.add(doc.id)
    return docs


def _json_lines(text: str, source: str) -> Iterable[tuple[int, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        try:
            value = safejson.loads(stripped)
        except safejson.JsonInputError as exc:
            raise ValueError(f"{source}:{lineno}: invalid JSON: the line {exc}") from exc
        yield lineno, value


def parse_kb_jsonl(text: str, source: str = "<jsonl>") -> list[KBDoc]:
    """Parse KB entries from JSONL text."""
    docs = []
    for lineno, obj in _json_lines(text, source):
        if not isinstance(obj, dict):
            raise ValueError(f"{source}:{lineno}: expected a JSON object")
        docs.append(doc_from_mapping(obj, f"{source}:{lineno}"))
    return _check_unique(docs, source)


def _split_multi(value: str, seps: str) -> list[str]:
    return [p.strip() for p in re.split(f"[{re.escape(seps)}]", value) if p.strip()]


def _csv_rows(reader: csv.DictReader[str], source: str) -> Iterable[dict[str | Any, str | Any]]:
    """The reader's rows, with the csv module's own errors (a field over its 131,072-character limit,
    a NUL byte) turned into ``ValueError`` naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"{source}:{reader.line_num}: invalid CSV: {exc}") from exc
        yield row


def parse_kb_csv(text: str, source: str = "<csv>") -> list[KBDoc]:
    """Parse KB entries from CSV text with a header row."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ValueError(f"{source}:1: invalid CSV: {exc}") from exc
    header = [h.strip().lower() for h in (fieldnames or [])]
    if "title" not in header or "answer" not in header:
        raise ValueError(f"{source}:1: CSV header must include 'title' and 'answer' columns")
    unknown = sorted(set(header) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"{source}:1: unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header
    docs = []
    for row in _csv_rows(reader, source):
        where = f"{source}:{reader.line_num}"
        if None in row:
            raise ValueError(f"{where}: more fields than columns in the header")
        values = {k: (v or "").strip() for k, v in row.items()}
        if not any(values.values()):
            continue
        data: dict[str, Any] = {
            "id": values.get("id") or None,
            "title": values.get("title", ""),
            "answer": values.get("answer", ""),
            "questions": _split_multi(values.get("questions", ""), "|\n"),
            "locale": values.get("locale") or None,
            "tags": _split_multi(values.get("tags", ""), "|,"),
        }
        docs.append(doc_from_mapping(data, where))
    return _check_unique(docs, source)


def _scalar(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def parse_front_matter(text: str, source: str = "<markdown>") -> tuple[dict[str, Any], str]:
    """Split a Markdown document into (front matter mapping, body). Strict subset of YAML."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{source}:1: missing front matter (the file must start with a '---' line)")
    meta: dict[str, Any] = {}
    current_list: list[str] | None = None
    for idx in range(1, len(lines)):
        lineno = idx + 1
        line = lines[idx]
        if line.strip() == "---":
            return meta, "\n".join(lines[idx + 1 :]).strip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"^\s+-\s+(.*)$", line) or re.match(r"^-\s+(.*)$", line)
        if item:
            if current_list is None:
                raise ValueError(f"{source}:{lineno}: list item without a preceding 'key:' line")
            current_list.append(_scalar(item.group(1)))
            continue
        kv = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$", line)
        if not kv:
            raise ValueError(f"{source}:{lineno}: expected 'key: value' or '- item', got {line.strip()!r}")
        key, value = kv.group(1).lower(), kv.group(2).strip()
        if key in meta:
            raise ValueError(f"{source}:{lineno}: duplicate key {key!r}")
        if value == "":
            current_list = []
            meta[key] = current_list
        elif value.startswith("["):
            if not value.endswith("]"):
                raise ValueError(f"{source}:{lineno}: unterminated inline list")
            meta[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
            current_list = None
        else:
            meta[key] = _scalar(value)
            current_list = None
    raise ValueError(f"{source}:{len(lines)}: front matter is not closed by a '---' line")


def parse_kb_markdown(text: str, source: str = "<markdown>", default_id: str | None = None) -> KBDoc:
    """Parse one Markdown entry (front matter + answer body)."""
    meta, body = parse_front_matter(text, source)
    if "answer" in meta:
        raise ValueError(f"{source}: the answer is the Markdown body, not a front matter key")
    return doc_from_mapping({**meta, "answer": body}, source, default_id=default_id)


def load_kb_markdown_dir(folder: Path) -> list[KBDoc]:
    """Load every ``*.md`` file of ``folder`` (sorted by name) as one entry."""
    docs = [
        parse_kb_markdown(path.read_text(encoding="utf-8"), str(path), default_id=path.stem)
        for path in sorted(folder.glob("*.md"))
    ]
    return _check_unique(docs, str(folder))


def load_kb(path: str | Path) -> list[KBDoc]:
    """Load a KB from a ``.jsonl``/``.json`` file, a ``.csv`` file or a folder of ``.md`` files."""
    path = Path(path)
    if path.is_dir():
        return load_kb_markdown_dir(path)
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return parse_kb_jsonl(text, str(path))
    if suffix == ".csv":
        return parse_kb_csv(text, str(path))
    if suffix == ".md":
        return [parse_kb_markdown(text, str(path), default_id=path.stem)]
    raise ValueError(f"{path}: unsupported KB file type {suffix!r} (use .jsonl, .csv or a folder of .md)")


def parse_cases_jsonl(text: str, source: str = "<cases>") -> list[EvalCase]:
    """Parse evaluation cases: ``{"text": "...", "expected": "<entry id>" | null}`` per line."""
    cases = []
    for lineno, obj in _json_lines(text, source):
        where = f"{source}:{lineno}"
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object")
        if "expected" not in obj:
            raise ValueError(f"{where}: 'expected' is required (an entry id, or null for out of scope)")
        case_text, expected = obj.get("text"), obj["expected"]
        if not isinstance(case_text, str) or not case_text.strip():
            raise ValueError(f"{where}: 'text' must be a non-empty string")
        if expected is not None and (not isinstance(expected, str) or not expected):
            raise ValueError(f"{where}: 'expected' must be an entry id string or null")
        cases.append(EvalCase(text=case_text.strip(), expected=expected))
    return cases


def load_cases(path: str | Path) -> list[EvalCase]:
    """Load evaluation cases from a JSONL file."""
    path = Path(path)
    return parse_cases_jsonl(path.read_text(encoding="utf-8-sig"), str(path))
