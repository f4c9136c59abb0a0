"""Start-up database checks with one-line, actionable errors (the runbook's failure table)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ai_customer_service.config import Settings
from ai_customer_service.db.dsn import describe_target
from ai_customer_service.db.engine import Database
from ai_customer_service.errors import StartupError


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return seen


def describe_db_error(exc: BaseException, settings: Settings) -> str:
    """Turn a driver exception into the runbook's one-line diagnosis."""
    if settings.postgres_enabled:
        address, user, database = describe_target(settings.postgres_dsn)
        where = f"PostgreSQL at {address}"
    else:
        where = f"SQLite at {settings.sqlite_path}"
        user = database = ""
    for err in _chain(exc):
        name = type(err).__name__
        if name == "InvalidPasswordError" or "password authentication failed" in str(err):
            return (
                f"database rejected the password for user {user!r} ({where}): "
                "check the password in AI_CS_POSTGRES_DSN"
            )
        if name == "InvalidAuthorizationSpecificationError":
            return f"database refused user {user!r} ({where}): check the user in AI_CS_POSTGRES_DSN"
        if name == "InvalidCatalogNameError":
            return f"database {database!r} does not exist ({where}): create it or fix AI_CS_POSTGRES_DSN"
        if isinstance(err, ConnectionRefusedError):
            return (
                f"cannot connect to {where}: connection refused; check that the database runs and "
                "AI_CS_POSTGRES_DSN points at it"
            )
        if isinstance(err, TimeoutError):
            return f"cannot connect to {where}: no answer within {settings.db_connect_timeout_seconds}s"
        if isinstance(err, OSError) and not isinstance(err, ConnectionRefusedError):
            return f"cannot connect to {where}: {err.strerror or err}"
    return f"cannot use {where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


async def check_database(db: Database) -> None:
    """Connect once and run ``SELECT 1``; raises :class:`StartupError` with the diagnosis."""
    timeout = db.settings.db_connect_timeout_seconds + 1
    try:
        async with asyncio.timeout(timeout), db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StartupError(describe_db_error(exc, db.settings)) from exc
    except Exception as exc:  # driver-specific errors that SQLAlchemy did not wrap
        raise StartupError(describe_db_error(exc, db.settings)) from exc
