"""``/kb``: knowledge-base entries (read: any staff; write: supervisor and admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.errors import KB_IMPORT_INVALID, BadRequest
from ai_customer_service.http.deps import app_context
from ai_customer_service.knowledge import importing, queries, service
from ai_customer_service.knowledge.models import EntryStatus
from ai_customer_service.knowledge.schemas import (
    EntryCreate,
    EntryList,
    EntryOut,
    EntryUpdate,
    ImportOut,
    SearchRequest,
    SearchResponse,
)
from ai_customer_service.pagination import PageNumber
from ai_customer_service.values import unstorable_reason
from ai_customer_service.wire import Storable

router = APIRouter(prefix="/kb", tags=["knowledge base"])
staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
editors = require_roles(Role.SUPERVISOR, Role.ADMIN)

EntryRef = Annotated[
    str, Path(description="the entry's id (UUID) or its key, e.g. the `id` of a bot reply's citation")
]


async def _entry_id(ctx: AppContext, ref: str) -> uuid.UUID:
    return await queries.find_entry_id(ctx.db, ref)


def _check_storable(records: list[KBDoc]) -> None:
    """Every text of an import must be storable on both databases (400 ``CS_KB_4004`` names it)."""
    for number, record in enumerate(records, start=1):
        texts = {
            "id": [record.id],
            "title": [record.title],
            "answer": [record.answer],
            "questions": list(record.questions),
            "tags": list(record.tags),
            "locale": [record.locale or ""],
        }
        for name, values in texts.items():
            for value in values:
                reason = unstorable_reason(value)
                if reason is not None:
                    raise BadRequest(
                        f"invalid import file: entry {number} ({record.id!r}): {name} {reason}",
                        KB_IMPORT_INVALID,
                        details=[{"field": f"{number}.{name}", "message": reason}],
                    )


@router.get("", response_model=EntryList)
async def list_entries(
    status: EntryStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="substring of title or key"), Storable] = None,
    page: PageNumber = 1,
    page_size: int = Query(50, ge=1, le=200),
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
) -> EntryList:
    result = await queries.read_entries(
        ctx.db, status=status.value if status else None, query=q, page=page, page_size=page_size
    )
    return EntryList.model_validate(result.model_dump())


@router.post("", status_code=201, response_model=EntryOut)
async def create_entry(
    body: EntryCreate, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> EntryOut:
    return EntryOut.model_validate(await service.create(ctx.db, body, actor_id=str(actor.id)))


@router.post("/search", response_model=SearchResponse)
async def search(
    body: SearchRequest, ctx: AppContext = Depends(app_context), actor: Actor = Depends(staff)
) -> SearchResponse:
    """What the bot would do with this message: the ranked entries with their scores, and the decision."""
    return SearchResponse.model_validate(await ctx.dialog.explain(body.query, top_k=body.top_k))


_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "answer"],
    "properties": {
        "id": {"type": "string", "description": "the entry's key (default: derived from the title)"},
        "title": {"type": "string"},
        "answer": {"type": "string"},
        "questions": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "locale": {"type": "string"},
    },
}
_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSONL (one entry a line; the default), CSV with a header row, or a JSON array",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": _ENTRY_SCHEMA}},
        },
    }
}


@router.post("/import", response_model=ImportOut, openapi_extra=_IMPORT_BODY)
async def import_entries(
    request: Request, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> ImportOut:
    """Bulk load: a JSONL body (one entry a line, the eval KB format), CSV (``text/csv``) or a JSON array."""
    raw = await request.body()
    records = importing.parse_upload(raw, request.headers.get("content-type", ""))
    _check_storable(records)
    return ImportOut.model_validate(await service.import_entries(ctx.db, records, actor_id=str(actor.id)))


@router.get("/{id_or_key}", response_model=EntryOut)
async def get_entry(
    id_or_key: EntryRef, ctx: AppContext = Depends(app_context), actor: Actor = Depends(staff)
) -> EntryOut:
    """One entry, by id or by key; unknown or malformed → 404 ``CS_KB_4001``."""
    return EntryOut.model_validate(await queries.read_entry(ctx.db, id_or_key))


@router.put("/{id_or_key}", response_model=EntryOut)
async def update_entry(
    id_or_key: EntryRef,
    body: EntryUpdate,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(editors),
) -> EntryOut:
    entry_id = await _entry_id(ctx, id_or_key)
    return EntryOut.model_validate(await service.update_entry(ctx.db, entry_id, body, actor_id=str(actor.id)))


@router.delete("/{id_or_key}", status_code=204)
async def delete_entry(
    id_or_key: EntryRef, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> Response:
    await service.delete(ctx.db, await _entry_id(ctx, id_or_key), actor_id=str(actor.id))
    return Response(status_code=204)


@router.post("/{id_or_key}/publish", response_model=EntryOut)
async def publish_entry(
    id_or_key: EntryRef, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> EntryOut:
    return EntryOut.model_validate(
        await service.publish(ctx.db, await _entry_id(ctx, id_or_key), actor_id=str(actor.id))
    )
