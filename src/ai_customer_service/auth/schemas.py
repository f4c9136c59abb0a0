"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from ai_customer_service.auth.models import Principal, Role
from ai_customer_service.wire import RequestModel


class PrincipalOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    active: bool
    available: bool
    capacity: int
    token_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, p: Principal) -> PrincipalOut:
        return cls(
            id=p.id,
            name=p.name,
            role=Role(p.role),
            active=p.active,
            available=p.available,
            capacity=p.capacity,
            token_prefix=p.token_prefix,
            created_at=p.created_at,
            last_used_at=p.last_used_at,
            revoked_at=p.revoked_at,
        )


class PrincipalList(BaseModel):
    items: list[PrincipalOut]


class CreatePrincipal(RequestModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    capacity: int = Field(default=5, ge=0, le=1000)


class CreatedPrincipalOut(PrincipalOut):
    token: str = Field(description="The API token; shown once, store it now.")


class Availability(RequestModel):
    available: bool | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)


class Me(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    auth: str
