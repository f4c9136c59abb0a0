"""Reading the audit trail."""

from __future__ import annotations

from sqlalchemy import select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.db.engine import Database


async def list_audit(
    db: Database, *, object_type: str | None, object_id: str | None, limit: int
) -> list[AuditLog]:
    """Rows oldest first, optionally for one object type / object."""
    stmt = select(AuditLog)
    if object_type:
        stmt = stmt.where(AuditLog.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditLog.object_id == object_id)
    stmt = stmt.order_by(AuditLog.created_at, AuditLog.id).limit(limit)
    async with db.transaction() as tx:
        return list((await tx.execute(stmt)).scalars())
