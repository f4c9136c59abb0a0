"""Row locking for claims (the one dialect-specific corner of the ticket code).

PostgreSQL: ``SELECT ... FOR UPDATE [SKIP LOCKED]``, so concurrent claimers in any number of processes
neither wait on nor take the same rows. SQLite: every transaction already starts with
``BEGIN IMMEDIATE`` (see :mod:`ai_customer_service.db.engine`), so writers are serialised and the
statement is left unchanged.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

S = TypeVar("S", bound=Select[Any])


def for_update(stmt: S, dialect: str, *, skip_locked: bool = False) -> S:
    if dialect == "postgresql":
        return stmt.with_for_update(skip_locked=skip_locked)
    return stmt
