"""Read-side helpers of the knowledge-base API (the ``read_*`` functions open their own read-only
session, so routers never open one)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.db.engine import Database
from ai_customer_service.errors import KB_NOT_FOUND, NotFound
from ai_customer_service.knowledge import service
from ai_customer_service.knowledge.models import KBEntry
from ai_customer_service.pagination import Page
from ai_customer_service.values import parse_uuid, unstorable_reason

KEY_MAX_LENGTH = 128


def not_found() -> NotFound:
    return NotFound("knowledge-base entry not found", KB_NOT_FOUND)


async def entry_id_for(tx: AsyncSession, ref: str) -> uuid.UUID:
    """The id of the entry ``ref`` names: its id (a UUID-shaped ``ref``) or its key (what bot replies
    cite). An id wins over a key that happens to look like a UUID; neither → 404 ``CS_KB_4001``."""
    if not ref or len(ref) > KEY_MAX_LENGTH or unstorable_reason(ref) is not None:
        raise not_found()
    entry_id = parse_uuid(ref)
    if entry_id is None:
        stmt = select(KBEntry.id).where(KBEntry.key == ref)
    else:
        stmt = (
            select(KBEntry.id)
            .where(or_(KBEntry.id == entry_id, KBEntry.key == ref))
            .order_by(case((KBEntry.id == entry_id, 0), else_=1))
            .limit(1)
        )
    found = (await tx.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise not_found()
    return found


async def find_entry_id(db: Database, ref: str) -> uuid.UUID:
    """:func:`entry_id_for` on a read-only session of its own (for callers outside a transaction)."""
    async with db.reader() as tx:
        return await entry_id_for(tx, ref)


async def read_entries(
    db: Database, *, status: str | None, query: str | None, page: int, page_size: int
) -> Page[dict[str, Any]]:
    """A page of entries, on a read-only session."""
    async with db.reader() as tx:
        return await service.list_entries(tx, status=status, query=query, page=page, page_size=page_size)


async def read_entry(db: Database, ref: str) -> dict[str, Any]:
    """One entry by id or key, on a read-only session; unknown or malformed → 404 ``CS_KB_4001``."""
    async with db.reader() as tx:
        return await service.get_entry(tx, await entry_id_for(tx, ref))
