"""Principals: create (the token is returned once), list, revoke, availability, and authentication."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.audit.repository import record
from ai_customer_service.auth.actor import BOOTSTRAP_ADMIN_ID, Actor
from ai_customer_service.auth.models import Principal, Role
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import (
    AUTH_DENIED,
    AUTH_PRINCIPAL_EXISTS,
    AUTH_PRINCIPAL_NOT_FOUND,
    AUTH_PRINCIPAL_REVOKED,
    REQ_INVALID,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
)
from ai_customer_service.security.tokens import display_prefix, generate_token, hash_token, same_secret

# last_used_at is written at most this often per principal, so authentication stays a read.
TOUCH_INTERVAL = timedelta(seconds=60)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_CAPACITY = 1000


@dataclass(frozen=True)
class CreatedPrincipal:
    principal: Principal
    token: str  # shown once, never stored


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.match(name):
        raise BadRequest(
            "name must be 1-64 characters: letters, digits and . _ @ -, starting with a letter or digit",
            REQ_INVALID,
        )
    return name


def _check_capacity(capacity: int) -> int:
    if not 0 <= capacity <= MAX_CAPACITY:
        raise BadRequest(f"capacity must be between 0 and {MAX_CAPACITY}", REQ_INVALID)
    return capacity


async def create_principal(
    db: Database,
    *,
    name: str,
    role: Role,
    capacity: int = 5,
    actor: Actor | None = None,
    password_hash: str | None = None,
) -> CreatedPrincipal:
    """``password_hash`` (from :func:`ai_customer_service.auth.sign_in.hash_new_password`) lets the
    principal sign in to the console as well."""
    name = _check_name(name)
    token = generate_token()
    principal = Principal(
        id=uuid.uuid4(),
        name=name,
        role=role.value,
        token_hash=hash_token(token),
        token_prefix=display_prefix(token),
        active=True,
        available=True,
        capacity=_check_capacity(capacity),
        password_hash=password_hash,
        failed_sign_ins=0,
    )
    try:
        async with db.transaction() as tx:
            if (await tx.execute(select(Principal.id).where(Principal.name == name))).first():
                raise Conflict(f"a principal named {name!r} already exists", AUTH_PRINCIPAL_EXISTS)
            tx.add(principal)
            await tx.flush()
            record(
                tx,
                object_type="principal",
                object_id=principal.id,
                action="create",
                actor_type=actor.role.value if actor else "system",
                actor_id=actor.id if actor else None,
                after_state="active",
                details={"name": name, "role": role.value, "password": password_hash is not None},
            )
    except IntegrityError as exc:  # a concurrent create with the same name
        raise Conflict(f"a principal named {name!r} already exists", AUTH_PRINCIPAL_EXISTS) from exc
    return CreatedPrincipal(principal, token)


async def list_principals(db: Database) -> list[Principal]:
    async with db.reader() as tx:
        rows = await tx.execute(select(Principal).order_by(Principal.created_at, Principal.name))
        return list(rows.scalars())


async def _find(tx: AsyncSession, id_or_name: str) -> Principal | None:
    try:
        pid = uuid.UUID(id_or_name)
    except ValueError:
        stmt = select(Principal).where(Principal.name == id_or_name)
    else:
        stmt = select(Principal).where(or_(Principal.id == pid, Principal.name == id_or_name))
    return (await tx.execute(stmt)).scalars().first()


async def revoke_principal(db: Database, id_or_name: str, *, actor: Actor | None = None) -> Principal:
    """Revoke a principal's token for good (idempotent); it also stops being auto-assigned work."""
    async with db.transaction() as tx:
        principal = await _find(tx, id_or_name)
        if principal is None:
            raise NotFound("principal not found", AUTH_PRINCIPAL_NOT_FOUND)
        if principal.active:
            now = utcnow()
            principal.active = False
            principal.available = False
            principal.revoked_at = now
            record(
                tx,
                object_type="principal",
                object_id=principal.id,
                action="revoke",
                actor_type=actor.role.value if actor else "system",
                actor_id=actor.id if actor else None,
                before_state="active",
                after_state="revoked",
            )
        return principal


async def set_availability(
    db: Database, principal_id: uuid.UUID, *, actor: Actor, available: bool | None, capacity: int | None
) -> Principal:
    """Agents set themselves available/away; supervisors and admins may set anyone's, and capacity."""
    if not actor.is_staff:
        if principal_id != actor.id:
            raise Forbidden("agents may only change their own availability", AUTH_DENIED)
        if capacity is not None:
            raise Forbidden("only supervisors and admins may change capacity", AUTH_DENIED)
    async with db.transaction() as tx:
        principal = await tx.get(Principal, principal_id)
        if principal is None:
            raise NotFound("principal not found", AUTH_PRINCIPAL_NOT_FOUND)
        if not principal.active and available:
            raise Conflict("a revoked principal cannot become available", AUTH_PRINCIPAL_REVOKED)
        before = "available" if principal.available else "away"
        if available is not None:
            principal.available = available
        if capacity is not None:
            principal.capacity = _check_capacity(capacity)
        record(
            tx,
            object_type="principal",
            object_id=principal.id,
            action="availability",
            actor_type=actor.role.value,
            actor_id=actor.id,
            before_state=before,
            after_state="available" if principal.available else "away",
            details={"capacity": principal.capacity},
        )
        return principal


# --- authentication -------------------------------------------------------------------------------


async def authenticate_token(db: Database, token: str, *, admin_token: str = "") -> Actor | None:
    """The actor holding ``token`` (or the bootstrap ``admin_token``), or ``None`` for an unknown,
    revoked or malformed token."""
    if admin_token and same_secret(token, admin_token):
        return Actor(BOOTSTRAP_ADMIN_ID, "admin-token", Role.ADMIN, auth="admin_token")
    if not token or len(token) > 256:
        return None
    digest = hash_token(token)
    async with db.sessionmaker() as read:
        principal = (
            await read.execute(select(Principal).where(Principal.token_hash == digest))
        ).scalar_one_or_none()
    if principal is None or not principal.active or principal.revoked_at is not None:
        return None
    now = utcnow()
    if principal.last_used_at is None or now - principal.last_used_at >= TOUCH_INTERVAL:
        async with db.transaction() as tx:  # a write at most once a minute per principal
            await tx.execute(
                update(Principal)
                .where(Principal.id == principal.id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    return Actor(principal.id, principal.name, Role(principal.role))


GATEWAY_ID_MAX = 64  # the original's actor_id column: VARCHAR(64)
GATEWAY_TOKEN_PREFIX = "gateway"  # noqa: S105 - a label on mirrored principals, not a secret


def gateway_identity(actor_id: str) -> tuple[uuid.UUID, str] | None:
    """The principal id and name that mirror a gateway's actor id (``X-CS-Actor-ID``, the original's
    free-text ``assigned_to``): a UUID keeps its value (named ``gw-<uuid>``); any other id of up to 64
    printable characters (``li.lei``, ``李雷``) is the name, with a new id. ``None`` when unusable."""
    actor_id = actor_id.strip()
    if not actor_id or len(actor_id) > GATEWAY_ID_MAX:
        return None
    if any(unicodedata.category(c).startswith("C") for c in actor_id):  # control characters
        return None
    try:
        pid = uuid.UUID(actor_id)
    except ValueError:
        return uuid.uuid4(), actor_id
    return pid, f"gw-{pid}"


async def mirror_principal(tx: AsyncSession, actor_id: str, role: Role) -> Principal | None:
    """The principal named by a gateway's actor id, created on first sight with ``role`` and an
    unusable token (inside the caller's transaction). ``None`` for an unusable id."""
    principal = await _find(tx, actor_id.strip())
    if principal is not None:
        return principal
    identity = gateway_identity(actor_id)
    if identity is None:
        return None
    pid, name = identity
    principal = Principal(
        id=pid,
        name=name,
        role=role.value,
        token_hash=hash_token(generate_token()),  # nobody knows this token
        token_prefix=GATEWAY_TOKEN_PREFIX,
        active=True,
        available=True,
        capacity=5,
    )
    tx.add(principal)
    await tx.flush()
    return principal


async def resolve_principal(tx: AsyncSession, ref: str, *, provision: bool) -> uuid.UUID | None:
    """A principal named by id or name (e.g. ``assign?agent_id=``). With ``provision`` (trusted-header
    mode), an unknown external id becomes an agent principal on first sight. ``None``: not found."""
    if provision:
        principal = await mirror_principal(tx, ref, Role.AGENT)
    else:
        principal = await _find(tx, ref.strip())
    return principal.id if principal is not None else None


async def authenticate_trusted_headers(db: Database, actor_id: str, role: Role) -> Actor | None:
    """Header mode (behind a trusted gateway only): the gateway names the actor and its role.

    The actor is mirrored as a principal (found by id or name, created on first sight with an unusable
    token) so tickets can reference it; a revoked mirror is refused. Actor ids are the gateway's own,
    up to 64 characters (the original's ``actor_id`` column), e.g. ``li.lei``.
    """
    for _attempt in range(2):
        try:
            async with db.transaction() as tx:
                principal = await mirror_principal(tx, actor_id, role)
                if principal is None or not principal.active:
                    return None
                return Actor(principal.id, principal.name, role, auth="trusted_headers")
        except IntegrityError:  # created concurrently by another request: read it again
            continue
    return None
