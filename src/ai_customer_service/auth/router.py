"""``GET /me`` and the principals admin API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from ai_customer_service.auth import service
from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.auth.schemas import (
    Availability,
    CreatedPrincipalOut,
    CreatePrincipal,
    Me,
    PrincipalList,
    PrincipalOut,
)
from ai_customer_service.context import AppContext
from ai_customer_service.errors import AUTH_PRINCIPAL_NOT_FOUND, NotFound
from ai_customer_service.http.deps import app_context
from ai_customer_service.values import parse_uuid

router = APIRouter(tags=["auth"])
admin_only = require_roles(Role.ADMIN)
anyone = require_roles()


def _principal_id(raw: str) -> uuid.UUID:
    """A path's principal id; a malformed one names no principal (404, like an unknown one)."""
    principal_id = parse_uuid(raw)
    if principal_id is None:
        raise NotFound("principal not found", AUTH_PRINCIPAL_NOT_FOUND)
    return principal_id


@router.get("/me", response_model=Me)
async def me(actor: Actor = Depends(anyone)) -> Me:
    return Me(id=actor.id, name=actor.name, role=actor.role, auth=actor.auth)


@router.get("/principals", response_model=PrincipalList)
async def list_principals(
    _: Actor = Depends(admin_only), ctx: AppContext = Depends(app_context)
) -> PrincipalList:
    return PrincipalList(items=[PrincipalOut.of(p) for p in await service.list_principals(ctx.db)])


@router.post("/principals", status_code=201, response_model=CreatedPrincipalOut)
async def create_principal(
    body: CreatePrincipal, actor: Actor = Depends(admin_only), ctx: AppContext = Depends(app_context)
) -> CreatedPrincipalOut:
    created = await service.create_principal(
        ctx.db, name=body.name, role=body.role, capacity=body.capacity, actor=actor
    )
    return CreatedPrincipalOut(**PrincipalOut.of(created.principal).model_dump(), token=created.token)


@router.post("/principals/{principal_id}/revoke", response_model=PrincipalOut)
async def revoke_principal(
    principal_id: str, actor: Actor = Depends(admin_only), ctx: AppContext = Depends(app_context)
) -> PrincipalOut:
    target = str(_principal_id(principal_id))
    return PrincipalOut.of(await service.revoke_principal(ctx.db, target, actor=actor))


@router.put("/principals/{principal_id}/availability", response_model=PrincipalOut)
async def set_availability(
    principal_id: str,
    body: Availability,
    actor: Actor = Depends(anyone),
    ctx: AppContext = Depends(app_context),
) -> PrincipalOut:
    principal = await service.set_availability(
        ctx.db, _principal_id(principal_id), actor=actor, available=body.available, capacity=body.capacity
    )
    return PrincipalOut.of(principal)
