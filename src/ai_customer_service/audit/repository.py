"""Writing audit rows inside the caller's transaction (never committed here)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ai_customer_service.audit.models import AuditLog


def record(
    session: AsyncSession,
    *,
    object_type: str,
    object_id: object,
    action: str,
    actor_type: str,
    actor_id: object | None = None,
    before_state: Any = None,
    after_state: Any = None,
    code: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    entry = AuditLog(
        **row(
            object_type=object_type,
            object_id=object_id,
            action=action,
            actor_type=actor_type,
            actor_id=actor_id,
            before_state=before_state,
            after_state=after_state,
            code=code,
            request_id=request_id,
            details=details,
        )
    )
    session.add(entry)
    return entry


TABLE: Table = AuditLog.__table__  # type: ignore[assignment]
INSERT = insert(TABLE)


def row(
    *,
    object_type: str,
    object_id: object,
    action: str,
    actor_type: str,
    actor_id: object | None = None,
    before_state: Any = None,
    after_state: Any = None,
    code: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """The complete row :func:`record` would write, for Core inserts (:data:`INSERT`) on hot paths
    that work on the transaction's connection instead of the ORM unit of work."""
    return {
        "id": uuid.uuid4(),
        "object_type": object_type,
        "object_id": str(object_id),
        "action": action,
        "actor_type": actor_type,
        "actor_id": None if actor_id is None else str(actor_id),
        "before_state": before_state,
        "after_state": after_state,
        "code": code,
        "request_id": request_id,
        "details": details,
        "tenant_id": "default",
        "source_ip": source_ip,
        "created_at": datetime.now(UTC),
    }


async def insert_row(conn: AsyncConnection, **fields: Any) -> None:
    """Insert :func:`row` (``fields`` as for :func:`row`) at once, on the transaction's connection."""
    await conn.execute(INSERT, row(**fields))
