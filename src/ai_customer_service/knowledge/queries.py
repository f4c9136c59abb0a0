"""Read-side helpers of the knowledge-base API."""

from __future__ import annotations

import uuid

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.errors import KB_NOT_FOUND, NotFound
from ai_customer_service.knowledge.models import KBEntry
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
