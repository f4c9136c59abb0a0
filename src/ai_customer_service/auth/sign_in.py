"""People signing in to the agent console: passwords, console sessions, failed-attempt throttling.

A console session is a random cookie token; only its SHA-256 is stored (``cs_console_sessions``), so
any replica accepts it and a database leak does not leak sessions. Every request looks the session up
together with its principal, so a revoked principal (or a reset password, which ends its sessions) is
signed out at once. Failed sign-ins are audited, cost the caller a fixed delay, and after
``console_sign_in_max_failures`` in a row the name is refused with 429 for a doubling block period.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.audit.repository import record
from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import ConsoleSession, Principal, Role
from ai_customer_service.auth.service import _find
from ai_customer_service.config import Settings
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import (
    AUTH_PRINCIPAL_NOT_FOUND,
    AUTH_SIGN_IN_BLOCKED,
    AUTH_SIGN_IN_FAILED,
    REQ_INVALID,
    BadRequest,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from ai_customer_service.security.passwords import hash_password, password_problem, verify_password
from ai_customer_service.security.tokens import hash_token

# every failed attempt answers after this delay (on top of the argon2 work), so guessing is slow
FAILURE_DELAY_SECONDS = 0.5
MAX_BLOCK_SECONDS = 3600
SESSION_TOKEN_PREFIX = "css_"  # noqa: S105 - a recognisable prefix, not a secret
BAD_CREDENTIALS = AUTH_SIGN_IN_FAILED
TOO_MANY_ATTEMPTS = AUTH_SIGN_IN_BLOCKED


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie value; never stored
    actor: Actor
    expires_at: datetime


@dataclass(frozen=True)
class ConsoleIdentity:
    actor: Actor
    session_id: uuid.UUID
    expires_at: datetime


async def hash_new_password(password: str) -> str:
    """Check and hash a new password (in a worker thread: argon2id is deliberately slow)."""
    problem = password_problem(password)
    if problem is not None:
        raise BadRequest(problem, REQ_INVALID)
    return await asyncio.to_thread(hash_password, password)


async def set_password(
    db: Database, id_or_name: str, password: str, *, actor: Actor | None = None
) -> Principal:
    """Set or reset a principal's console password; its open console sessions end."""
    encoded = await hash_new_password(password)
    async with db.transaction() as tx:
        principal = await _find(tx, id_or_name)
        if principal is None:
            raise NotFound("principal not found", AUTH_PRINCIPAL_NOT_FOUND)
        had = principal.password_hash is not None
        principal.password_hash = encoded
        principal.failed_sign_ins = 0
        principal.sign_in_blocked_until = None
        await tx.execute(
            update(ConsoleSession)
            .where(ConsoleSession.principal_id == principal.id, ConsoleSession.ended_at.is_(None))
            .values(ended_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        record(
            tx,
            object_type="principal",
            object_id=principal.id,
            action="password_reset" if had else "password_set",
            actor_type=actor.role.value if actor else "system",
            actor_id=actor.id if actor else None,
        )
        return principal


def _block_seconds(settings: Settings, failures: int) -> int:
    over = failures - settings.console_sign_in_max_failures
    return int(min(MAX_BLOCK_SECONDS, settings.console_sign_in_block_seconds * 2 ** min(over, 16)))


def _retry_after(until: datetime, now: datetime) -> str:
    return str(max(1, int((until - now).total_seconds() + 0.999)))


async def sign_in(
    db: Database,
    settings: Settings,
    *,
    username: str,
    password: str,
    user_agent: str = "",
    request_id: str | None = None,
) -> SignedIn:
    """Check the name and password; on success open a console session. Failures: 401
    ``CS_AUTH_4012`` (the same for an unknown name, a wrong password, a revoked principal or one
    without a password), 429 ``CS_AUTH_4291`` with ``Retry-After`` while the name is blocked."""
    name = username.strip()[:64]
    async with db.sessionmaker() as read:
        principal = await _find(read, name) if name else None
    now = utcnow()
    if principal is not None and principal.sign_in_blocked_until and principal.sign_in_blocked_until > now:
        await _audit_failure(db, name, principal, "blocked", request_id)
        raise RateLimited(
            "too many failed sign-ins; try again later",
            TOO_MANY_ATTEMPTS,
            headers={"Retry-After": _retry_after(principal.sign_in_blocked_until, now)},
        )
    encoded = principal.password_hash if principal is not None else None
    ok = await asyncio.to_thread(verify_password, encoded, password)
    usable = principal is not None and principal.active and principal.revoked_at is None
    if not ok or not usable or principal is None:
        await _record_failure(db, settings, name, principal, request_id)
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        raise Unauthenticated("wrong user name or password", BAD_CREDENTIALS)
    token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.console_session_ttl_seconds)
    async with db.transaction() as tx:
        tx.add(
            ConsoleSession(
                id=uuid.uuid4(),
                token_hash=hash_token(token),
                principal_id=principal.id,
                created_at=now,
                expires_at=expires_at,
                user_agent=user_agent[:200] or None,
            )
        )
        await tx.execute(
            update(Principal)
            .where(Principal.id == principal.id)
            .values(failed_sign_ins=0, sign_in_blocked_until=None, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        record(
            tx,
            object_type="principal",
            object_id=principal.id,
            action="console_sign_in",
            actor_type=principal.role,
            actor_id=principal.id,
            request_id=request_id,
        )
    return SignedIn(
        token, Actor(principal.id, principal.name, Role(principal.role), auth="console"), expires_at
    )


async def _record_failure(
    db: Database, settings: Settings, name: str, principal: Principal | None, request_id: str | None
) -> None:
    async with db.transaction() as tx:
        if principal is not None:
            failures = principal.failed_sign_ins + 1
            values: dict[str, object] = {"failed_sign_ins": Principal.failed_sign_ins + 1}
            if failures >= settings.console_sign_in_max_failures:
                values["sign_in_blocked_until"] = utcnow() + timedelta(
                    seconds=_block_seconds(settings, failures)
                )
            await tx.execute(
                update(Principal)
                .where(Principal.id == principal.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        _failure_row(tx, name, principal, "bad_credentials", request_id)


async def _audit_failure(
    db: Database, name: str, principal: Principal | None, reason: str, request_id: str | None
) -> None:
    async with db.transaction() as tx:
        _failure_row(tx, name, principal, reason, request_id)


def _failure_row(
    tx: AsyncSession, name: str, principal: Principal | None, reason: str, request_id: str | None
) -> None:
    record(
        tx,
        object_type="principal" if principal is not None else "console_sign_in",
        object_id=principal.id if principal is not None else (name or "-"),
        action="console_sign_in_failed",
        actor_type="anonymous",
        code=TOO_MANY_ATTEMPTS if reason == "blocked" else BAD_CREDENTIALS,
        request_id=request_id,
        details={"user_name": name, "reason": reason},
    )


async def identify(db: Database, token: str) -> ConsoleIdentity | None:
    """The signed-in actor behind a console cookie, or ``None`` (unknown, ended, expired, or the
    principal is revoked)."""
    if not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > 128:
        return None
    now = utcnow()
    async with db.sessionmaker() as read:
        row = (
            await read.execute(
                select(ConsoleSession.id, ConsoleSession.expires_at, Principal)
                .join(Principal, Principal.id == ConsoleSession.principal_id)
                .where(
                    ConsoleSession.token_hash == hash_token(token),
                    ConsoleSession.ended_at.is_(None),
                    ConsoleSession.expires_at > now,
                    Principal.active.is_(True),
                    Principal.revoked_at.is_(None),
                )
            )
        ).first()
    if row is None:
        return None
    session_id, expires_at, principal = row
    actor = Actor(principal.id, principal.name, Role(principal.role), auth="console")
    return ConsoleIdentity(actor, session_id, expires_at)


async def sign_out(db: Database, token: str) -> None:
    async with db.transaction() as tx:
        ended = await tx.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == hash_token(token), ConsoleSession.ended_at.is_(None))
            .values(ended_at=utcnow())
            .returning(ConsoleSession.principal_id)
            .execution_options(synchronize_session=False)
        )
        principal_id = ended.scalar_one_or_none()
        if principal_id is not None:
            record(
                tx,
                object_type="principal",
                object_id=principal_id,
                action="console_sign_out",
                actor_type="principal",
                actor_id=principal_id,
            )


async def purge_sessions(db: Database, *, keep_days: int = 7) -> int:
    """Delete console sessions that ended or expired more than ``keep_days`` ago."""
    cutoff = utcnow() - timedelta(days=keep_days)
    async with db.transaction() as tx:
        result = await tx.execute(
            delete(ConsoleSession).where(
                or_(ConsoleSession.expires_at < cutoff, ConsoleSession.ended_at < cutoff)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
