"""``GET /audit?object_type=&object_id=&order=&page=&page_size=`` for supervisors and admins."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ai_customer_service.audit.queries import Order, list_audit
from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.http.deps import app_context
from ai_customer_service.pagination import Page, PageNumber
from ai_customer_service.wire import Storable, Timestamp

MAX_PAGE_SIZE = 1000

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    id: uuid.UUID
    object_type: str
    object_id: str
    action: str
    actor_type: str
    actor_id: str | None
    # a state name, or (rows in the original's shape, e.g. message_processed) a JSON object
    before_state: Any = None
    after_state: Any = None
    code: str | None
    request_id: str | None
    details: dict[str, Any] | None
    tenant_id: str = "default"
    source_ip: str | None = None
    created_at: Timestamp


class AuditList(Page[AuditOut]):
    """One page of audit rows."""


@router.get("/audit", response_model=AuditList)
async def audit(
    _: Actor = Depends(require_roles(Role.SUPERVISOR, Role.ADMIN)),
    ctx: AppContext = Depends(app_context),
    object_type: Annotated[str | None, Query(max_length=32), Storable] = None,
    object_id: Annotated[str | None, Query(max_length=64), Storable] = None,
    order: Annotated[Order, Query(description="desc: newest first (default); asc: oldest first")] = "desc",
    page: PageNumber = 1,
    page_size: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="default 200")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="older name of page_size", deprecated=True)
    ] = None,
) -> AuditList:
    size = page_size or limit or 200
    result = await list_audit(
        ctx.db, object_type=object_type, object_id=object_id, order=order, page=page, page_size=size
    )
    items = result.map(lambda row: AuditOut.model_validate(row, from_attributes=True))
    return AuditList(items=items, total=result.total, page=result.page, page_size=result.page_size)
