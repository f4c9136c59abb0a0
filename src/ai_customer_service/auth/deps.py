"""FastAPI dependencies for back-office authentication and roles.

Usage in a router::

    from ai_customer_service.auth.deps import Actor, require_roles

    @router.post("/things")
    async def create(actor: Actor = Depends(require_roles(Role.SUPERVISOR, Role.ADMIN))) -> ...

Credentials, in order: ``Authorization: Bearer <token>`` (a principal's token, or the bootstrap
``AI_CS_ADMIN_TOKEN``); then, only when ``AI_CS_AUTH_TRUSTED_HEADERS=true``, the original's
``X-CS-Actor-ID`` / ``X-CS-Actor-Role`` headers. Missing or bad credentials → 401 ``CS_AUTH_4011``
with ``WWW-Authenticate: Bearer``; an authenticated role that is not allowed → 403 ``CS_AUTH_4001``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import Role
from ai_customer_service.auth.service import authenticate_token, authenticate_trusted_headers
from ai_customer_service.errors import AUTH_DENIED, AUTH_REQUIRED, Forbidden, Unauthenticated
from ai_customer_service.http.deps import context_of

__all__ = ["ALL_ROLES", "Actor", "Role", "current_actor", "require_roles"]

ALL_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
ACTOR_ID_HEADER = "X-CS-Actor-ID"
ACTOR_ROLE_HEADER = "X-CS-Actor-Role"


# Declares the bearer scheme in the OpenAPI document (Swagger's "Authorize" button, generated
# clients). It never rejects anything itself: current_actor parses the header so that a malformed
# one gets our own 401 envelope.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A principal's token (`POST /principals`) or the bootstrap `AI_CS_ADMIN_TOKEN`.",
)


def _unauthenticated(message: str) -> Unauthenticated:
    return Unauthenticated(message, AUTH_REQUIRED, headers={"WWW-Authenticate": "Bearer"})


async def current_actor(request: Request) -> Actor:
    """The authenticated actor of this request (cached on ``request.state``)."""
    cached = getattr(request.state, "actor", None)
    if isinstance(cached, Actor):
        return cached
    ctx = context_of(request)
    actor: Actor | None = None
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("invalid authorization header: use 'Bearer <token>'")
        actor = await authenticate_token(ctx.db, token.strip(), admin_token=ctx.settings.admin_token)
        if actor is None:
            raise _unauthenticated("invalid or revoked token")
    elif ctx.settings.auth_trusted_headers and request.headers.get(ACTOR_ID_HEADER):
        raw_role = (request.headers.get(ACTOR_ROLE_HEADER) or "").strip().lower()
        try:
            role = Role(raw_role)
        except ValueError:
            raise _unauthenticated(f"invalid {ACTOR_ROLE_HEADER} header") from None
        actor = await authenticate_trusted_headers(ctx.db, request.headers[ACTOR_ID_HEADER], role)
        if actor is None:
            raise _unauthenticated(f"invalid or revoked {ACTOR_ID_HEADER}")
    if actor is None:
        raise _unauthenticated("authentication required: send Authorization: Bearer <token>")
    request.state.actor = actor
    return actor


def require_roles(*roles: Role) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency returning the authenticated :class:`Actor` when its role is one of ``roles``
    (every role when none is given)."""
    allowed = frozenset(roles or ALL_ROLES)

    async def dependency(
        request: Request, _bearer: HTTPAuthorizationCredentials | None = Security(BEARER)
    ) -> Actor:
        actor = await current_actor(request)
        if actor.role not in allowed:
            raise Forbidden("access denied: role not allowed", AUTH_DENIED)
        return actor

    return dependency
