"""Reading the audit trail."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, func, select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.db.engine import Database
from ai_customer_service.pagination import Page, offset

Order = Literal["asc", "desc"]


async def list_audit(
    db: Database,
    *,
    object_type: str | None,
    object_id: str | None,
    order: Order = "desc",
    page: int = 1,
    page_size: int = 200,
) -> Page[AuditLog]:
    """One page of rows, newest first (``order="asc"``: oldest first), optionally for one object
    type / object."""
    conds: list[ColumnElement[bool]] = []
    if object_type:
        conds.append(AuditLog.object_type == object_type)
    if object_id:
        conds.append(AuditLog.object_id == object_id)
    if order == "asc":
        ordering = (AuditLog.created_at.asc(), AuditLog.id.asc())
    else:
        ordering = (AuditLog.created_at.desc(), AuditLog.id.desc())
    stmt = select(AuditLog).where(*conds).order_by(*ordering).offset(offset(page, page_size)).limit(page_size)
    async with db.reader() as tx:
        total = (await tx.execute(select(func.count()).select_from(AuditLog).where(*conds))).scalar_one()
        rows = list((await tx.execute(stmt)).scalars())
    return Page[AuditLog](items=rows, total=int(total), page=page, page_size=page_size)
