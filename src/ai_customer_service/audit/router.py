"""``GET /audit?object_type=&object_id=`` for supervisors and admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ai_customer_service.audit.queries import list_audit
from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.http.deps import app_context

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    id: uuid.UUID
    object_type: str
    object_id: str
    action: str
    actor_type: str
    actor_id: str | None
    before_state: str | None
    after_state: str | None
    code: str | None
    request_id: str | None
    details: dict[str, Any] | None
    created_at: datetime


class AuditList(BaseModel):
    items: list[AuditOut]


@router.get("/audit", response_model=AuditList)
async def audit(
    _: Actor = Depends(require_roles(Role.SUPERVISOR, Role.ADMIN)),
    ctx: AppContext = Depends(app_context),
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditList:
    rows = await list_audit(ctx.db, object_type=object_type, object_id=object_id, limit=limit)
    return AuditList(items=[AuditOut.model_validate(r, from_attributes=True) for r in rows])
