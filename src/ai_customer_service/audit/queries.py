"""Reading the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, func, select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.db.engine import Database

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditLog]
    total: int
    page: int
    page_size: int


async def list_audit(
    db: Database,
    *,
    object_type: str | None,
    object_id: str | None,
    order: Order = "desc",
    page: int = 1,
    page_size: int = 200,
) -> AuditPage:
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
    stmt = select(AuditLog).where(*conds).order_by(*ordering).offset((page - 1) * page_size).limit(page_size)
    async with db.transaction() as tx:
        total = (await tx.execute(select(func.count()).select_from(AuditLog).where(*conds))).scalar_one()
        rows = list((await tx.execute(stmt)).scalars())
    return AuditPage(rows, int(total), page, page_size)
