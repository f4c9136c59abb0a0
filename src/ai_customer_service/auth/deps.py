"""Back-office authentication dependency (MINIMAL placeholder: replaced by the auth module on merge).

Accepts ``Authorization: Bearer <AI_CS_ADMIN_TOKEN>`` as the built-in admin (constant-time compare);
anything else is 401 ``CS_AUTH_4011``. A role outside the allowed set is 403 ``CS_AUTH_4001``.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from ai_customer_service.auth.models import Role
from ai_customer_service.errors import Forbidden, Unauthenticated

ADMIN_TOKEN_ACTOR_ID = uuid.uuid5(uuid.NAMESPACE_URL, "ai-customer-service:admin-token")


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID
    name: str
    role: Role


def require_roles(*roles: Role) -> Callable[[Request], Awaitable[Actor]]:
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Actor:
        settings = request.app.state.ctx.settings
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        expected = str(settings.admin_token)
        if (
            scheme.lower() != "bearer"
            or not expected
            or not hmac.compare_digest(token.strip().encode(), expected.encode())
        ):
            raise Unauthenticated(
                "authentication required", "CS_AUTH_4011", headers={"WWW-Authenticate": "Bearer"}
            )
        actor = Actor(id=ADMIN_TOKEN_ACTOR_ID, name="admin-token", role=Role.ADMIN)
        if actor.role not in allowed:
            raise Forbidden("access denied", "CS_AUTH_4001")
        return actor

    return dependency
