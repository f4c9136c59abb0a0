"""Turning an uploaded or local KB file into entries (the formats live in ``knowledge/formats.py``)."""

from __future__ import annotations

from pathlib import Path

from ai_customer_service import safejson
from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.errors import KB_IMPORT_INVALID, BadRequest
from ai_customer_service.knowledge import formats

DEMO_KB = Path(__file__).with_name("demo") / "kb.jsonl"


def parse_upload(raw: bytes, content_type: str) -> list[KBDoc]:
    """JSONL (default), CSV (``text/csv``) or a JSON array of entries; 400 ``CS_KB_4004`` when invalid."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("import file must be UTF-8", KB_IMPORT_INVALID) from exc
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "text/csv":
            docs = formats.parse_kb_csv(text, "<upload>")
        elif kind == "application/json" and text.lstrip().startswith("["):
            try:
                items = safejson.loads(text)
            except safejson.JsonInputError as exc:
                raise ValueError(f"<upload>: the JSON array {exc}") from exc
            if not isinstance(items, list):
                raise ValueError("<upload>: expected a JSON array of entries")
            docs = [formats.doc_from_mapping(item, f"<upload>[{i}]") for i, item in enumerate(items)]
        else:
            docs = formats.parse_kb_jsonl(text, "<upload>")
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadRequest(f"invalid import file: {exc}", KB_IMPORT_INVALID) from exc
    if not docs:
        raise BadRequest("the import file holds no entries", KB_IMPORT_INVALID)
    return docs


def load_file(path: str | Path) -> list[KBDoc]:
    """A JSONL or CSV file, a Markdown file, or a folder of Markdown files."""
    return formats.load_kb(Path(path))
