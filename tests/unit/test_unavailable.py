"""Which database errors are an outage (503, retry later) and which are a bug (500)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ai_customer_service.http.errors import _is_unavailable


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_outages_are_transient_and_bugs_are_not() -> None:
    assert _is_unavailable(ConnectionRefusedError())
    assert _is_unavailable(PoolTimeout("QueuePool limit reached"))
    assert _is_unavailable(OperationalError("x", {}, sqlite3.OperationalError("database is locked")))
    assert not _is_unavailable(OperationalError("x", {}, sqlite3.OperationalError("no such table: cs_x")))
    assert _is_unavailable(OperationalError("x", {}, _PgError("40P01")))  # deadlock detected
    assert _is_unavailable(OperationalError("x", {}, _PgError("08006")))  # connection failure
    assert not _is_unavailable(IntegrityError("x", {}, _PgError("23505")))  # unique violation
    assert not _is_unavailable(ValueError("a bug"))
