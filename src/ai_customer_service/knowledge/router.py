"""``/kb``: knowledge-base entries (read: any staff; write: supervisor and admin)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.http.deps import app_context
from ai_customer_service.knowledge import importing, service
from ai_customer_service.knowledge.models import EntryStatus
from ai_customer_service.knowledge.schemas import EntryCreate, EntryUpdate, SearchRequest

router = APIRouter(prefix="/kb", tags=["knowledge base"])
staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
editors = require_roles(Role.SUPERVISOR, Role.ADMIN)


@router.get("")
async def list_entries(
    status: EntryStatus | None = None,
    q: str | None = Query(None, max_length=200, description="substring of title or key"),
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=200),
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
) -> dict[str, Any]:
    async with ctx.db.sessionmaker() as tx:
        return await service.list_entries(
            tx, status=status.value if status else None, query=q, page=page, page_size=page_size
        )


@router.post("", status_code=201)
async def create_entry(
    body: EntryCreate, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> dict[str, Any]:
    return await service.create(ctx.db, body, actor_id=str(actor.id))


@router.post("/search")
async def search(
    body: SearchRequest, ctx: AppContext = Depends(app_context), actor: Actor = Depends(staff)
) -> dict[str, Any]:
    """What the bot would do with this message: the ranked entries with their scores, and the decision."""
    return await ctx.dialog.explain(body.query, top_k=body.top_k)


@router.post("/import")
async def import_entries(
    request: Request, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> dict[str, Any]:
    """Bulk load: a JSONL body (one entry a line, the eval KB format), CSV (``text/csv``) or a JSON array."""
    raw = await request.body()
    records = importing.parse_upload(raw, request.headers.get("content-type", ""))
    return await service.import_entries(ctx.db, records, actor_id=str(actor.id))


@router.get("/{entry_id}")
async def get_entry(
    entry_id: uuid.UUID, ctx: AppContext = Depends(app_context), actor: Actor = Depends(staff)
) -> dict[str, Any]:
    async with ctx.db.sessionmaker() as tx:
        return await service.get_entry(tx, entry_id)


@router.put("/{entry_id}")
async def update_entry(
    entry_id: uuid.UUID,
    body: EntryUpdate,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(editors),
) -> dict[str, Any]:
    return await service.update_entry(ctx.db, entry_id, body, actor_id=str(actor.id))


@router.delete("/{entry_id}", status_code=204)
async def delete_entry(
    entry_id: uuid.UUID, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> Response:
    await service.delete(ctx.db, entry_id, actor_id=str(actor.id))
    return Response(status_code=204)


@router.post("/{entry_id}/publish")
async def publish_entry(
    entry_id: uuid.UUID, ctx: AppContext = Depends(app_context), actor: Actor = Depends(editors)
) -> dict[str, Any]:
    return await service.publish(ctx.db, entry_id, actor_id=str(actor.id))
