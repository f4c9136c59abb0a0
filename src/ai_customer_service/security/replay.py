"""Binding v1-signed requests to the path they were first accepted on (``cs_signature_uses``).

A version-1 signature covers ``timestamp.body`` only, so within the skew window the same signed
bytes could be re-sent to another path: another channel (``/webhook/telegram``), another session's
``/feedback``. The first path that accepts a signature claims it, in the database (so the claim holds
across replicas), inside the transaction of the request's own writes (a rolled-back request claims
nothing). The same bytes on another path are refused with 403 ``CS_AUTH_4035``; on the same path they
are a retry, handled by the route's own idempotency. Version-2 signatures cover method and path and
need no claim. A claim is useless once its timestamp is outside the skew window: rows older than
twice the window are purged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.db.engine import Database
from ai_customer_service.errors import Forbidden
from ai_customer_service.security import signing
from ai_customer_service.security.models import SignatureUse

TABLE: Table = SignatureUse.__table__  # type: ignore[assignment]

# one indexed read (the primary key); also a scalar subquery of the webhook's pre-read
TARGET_OF = select(TABLE.c.target).where(TABLE.c.digest == bindparam("signature_digest"))


@dataclass(frozen=True)
class SignatureBinding:
    """A verified v1 signature and where it was sent: ``digest`` (sha256 of the normalised
    signature), ``target`` (``"POST /api/v1/customer-service/webhook/widget"``)."""

    digest: str
    target: str


def digest(signature: str) -> str:
    """sha256 (hex) of a signature header, normalised (the ``sha256=`` prefix is optional)."""
    normalised = signature.strip().lower().removeprefix(signing.SIGNATURE_PREFIX)
    return hashlib.sha256(normalised.encode()).hexdigest()


def other_path() -> Forbidden:
    return Forbidden(signing.OTHER_PATH.message, signing.OTHER_PATH.code)


def check(binding: SignatureBinding | None, claimed_target: str | None) -> None:
    """Raise 403 ``CS_AUTH_4035`` when the signature was already claimed by another target."""
    if binding is not None and claimed_target is not None and claimed_target != binding.target:
        raise other_path()


async def claim(tx: AsyncSession, binding: SignatureBinding, *, now: datetime | None = None) -> None:
    """Inside the caller's transaction: claim the signature for its target, or raise 403
    ``CS_AUTH_4035`` when another target holds it. The same target again writes nothing.

    On PostgreSQL a concurrent, uncommitted claim of the same signature makes this wait for it; on
    SQLite writers are serialised already.
    """
    insert: Any = postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(TABLE)
        .values(digest=binding.digest, target=binding.target, created_at=now or datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(TABLE.c.digest)
    )
    if (await tx.execute(stmt)).first() is not None:
        return
    target = (await tx.execute(TARGET_OF, {"signature_digest": binding.digest})).scalar_one_or_none()
    check(binding, target)


async def purge(db: Database, *, max_skew_seconds: int, now: datetime | None = None) -> int:
    """Delete claims older than twice the skew window (their requests are refused as stale anyway)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=2 * max_skew_seconds)
    async with db.transaction() as tx:
        result = await tx.execute(delete(TABLE).where(TABLE.c.created_at < cutoff))
        return int(cast(CursorResult[Any], result).rowcount)
