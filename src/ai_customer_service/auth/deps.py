"""Back-office authentication (interim): the bootstrap admin token ``AI_CS_ADMIN_TOKEN``.

Routes declare ``Depends(require_roles(...))`` and receive the calling :class:`Actor`. Without a
configured token every back-office route answers 401: never open by default.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.errors import Forbidden, Unauthenticated
from ai_customer_service.http.deps import app_context

BOOTSTRAP_ADMIN_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID
    name: str
    role: Role


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def require_roles(*roles: Role) -> Callable[..., Awaitable[Actor]]:
    async def dependency(request: Request, ctx: AppContext = Depends(app_context)) -> Actor:
        token = _bearer(request)
        admin_token = ctx.settings.admin_token
        if not token or not admin_token or not hmac.compare_digest(token.encode(), admin_token.encode()):
            raise Unauthenticated(
                "missing or invalid credentials", "CS_AUTH_4011", headers={"WWW-Authenticate": "Bearer"}
            )
        actor = Actor(BOOTSTRAP_ADMIN_ID, "bootstrap-admin", Role.ADMIN)
        if roles and actor.role not in roles:
            raise Forbidden("access denied", "CS_AUTH_4001")
        return actor

    return dependency
