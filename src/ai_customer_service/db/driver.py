"""The message path's pre-built statements, run by the driver itself on PostgreSQL.

SQLAlchemy's execution path (greenlet hops, cursor and result set-up, connection events, the compiled
cache's key) costs about 140 µs of CPU per statement on a 2-core machine, against about 70 µs for
asyncpg alone with the same SQL (``bench/webhook/README.md``). The per-message statements are
built once at import, so :func:`fetch_one` and :func:`execute` compile each of them once for the
connection's dialect and, on PostgreSQL, hand the SQL and the processed parameters straight to the
asyncpg connection under the SQLAlchemy connection: the same transaction (begun here exactly as
SQLAlchemy's cursor would begin it), the same type processing (each parameter's bind processor,
each column's result processor), and errors translated into SQLAlchemy's exception classes
(``IntegrityError`` for a unique violation), with a connection that died invalidated. On SQLite they
are plain ``conn.execute``.

Only statements whose parameters are all named bind parameters belong here (no expanding ``IN``
lists, no ``literal_execute``); the rest of the code uses SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from ai_customer_service.db.engine import SINGLE_STATEMENT

Processor = Callable[[Any], Any] | None


class CompiledStatement:
    """One statement compiled for one dialect: its SQL, its parameter names in position order with
    their bind processors, and its result columns' processors."""

    __slots__ = ("keys", "names", "processors", "results", "sql", "statement")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        self.statement = statement  # kept: the cache is keyed by its id
        self.sql = compiled.string
        names = compiled.positiontup or []
        binds = {compiled.bind_names[b]: b for b in compiled.bind_names}
        for name in names:
            bind = binds[name]
            if bind.expanding or bind.literal_execute:
                raise ValueError(f"{name}: expanding or literal parameters cannot be pre-compiled")
        self.names: tuple[str, ...] = tuple(names)
        self.processors: tuple[Processor, ...] = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        columns = getattr(statement, "selected_columns", None)
        if columns is None:  # INSERT/UPDATE ... RETURNING
            returning = getattr(statement, "_returning", ()) or ()
            columns = list(returning)
        self.keys: tuple[str, ...] = tuple(str(c.key) for c in columns)
        self.results: tuple[Processor, ...] = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        # processors get None too, as in SQLAlchemy (a JSON column stores None as JSON null)
        return [
            value if process is None else process(value)
            for value, process in zip([params[name] for name in self.names], self.processors, strict=True)
        ]

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        if not any(self.results):
            return tuple(record)
        return tuple(v if p is None else p(v) for v, p in zip(record, self.results, strict=False))


_compiled: dict[tuple[int, str], CompiledStatement] = {}


def compiled_for(statement: Executable, dialect: Dialect) -> CompiledStatement:
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is None or found.statement is not statement:
        found = _compiled[key] = CompiledStatement(statement, dialect)
    return found


async def fetch_one(
    conn: AsyncConnection, statement: Executable, params: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of a pre-built statement (positional, processed), or ``None``."""
    if conn.dialect.name != "postgresql":
        row = (await conn.execute(statement, params)).first()
        return None if row is None else tuple(row)
    compiled = compiled_for(statement, conn.dialect)
    record = await _run(conn, compiled, params, fetch=True)
    return None if record is None else compiled.row(record)


async def fetch_mapping(
    conn: AsyncConnection, statement: Executable, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The first row of a pre-built statement by column name, or ``None``."""
    if conn.dialect.name != "postgresql":
        row = (await conn.execute(statement, params)).first()
        return None if row is None else dict(row._mapping)
    compiled = compiled_for(statement, conn.dialect)
    record = await _run(conn, compiled, params, fetch=True)
    return None if record is None else dict(zip(compiled.keys, compiled.row(record), strict=True))


async def execute(conn: AsyncConnection, statement: Executable, params: Mapping[str, Any]) -> None:
    """Run a pre-built statement that returns nothing."""
    if conn.dialect.name != "postgresql":
        await conn.execute(statement, params)
        return
    await _run(conn, compiled_for(statement, conn.dialect), params, fetch=False)


async def _run(
    conn: AsyncConnection, compiled: CompiledStatement, params: Mapping[str, Any], *, fetch: bool
) -> Any:
    sync = conn.sync_connection
    assert sync is not None  # an open AsyncConnection
    fairy = sync.connection  # checked out already: no I/O here
    adapter: Any = fairy.dbapi_connection
    driver: Any = fairy.driver_connection
    args = compiled.arguments(params)
    try:
        # what SQLAlchemy's asyncpg cursor does before each statement: BEGIN on first use (SQLAlchemy
        # 2.1, pinned; tests/integration/test_driver.py), unless the connection is for single
        # statements (``Database.single_read``) or in autocommit (then ``_start_transaction`` does not)
        if adapter._transaction is None and not sync.get_execution_options().get(SINGLE_STATEMENT):
            await adapter._start_transaction()
        if fetch:
            return await driver.fetchrow(compiled.sql, *args)
        await driver.execute(compiled.sql, *args)
        return None
    except Exception as error:
        raise _translate(sync, compiled, args, adapter, error) from error


def _translate(
    sync: Connection, compiled: CompiledStatement, args: list[Any], adapter: Any, error: Exception
) -> Exception:
    """The SQLAlchemy exception SQLAlchemy would raise for ``error`` (invalidating the connection
    when the database connection is gone)."""
    if isinstance(error, exc.DBAPIError):
        return error
    dbapi_error: BaseException = error
    try:
        adapter._handle_exception(error)  # raises the DBAPI-level exception of the adapter
    except Exception as translated:
        dbapi_error = translated
    dialect = sync.dialect
    dbapi_base = dialect.loaded_dbapi.Error
    if not isinstance(dbapi_error, dbapi_base):
        return error
    disconnect = dialect.is_disconnect(dbapi_error, adapter, None)  # type: ignore[arg-type]
    if disconnect:
        sync.invalidate(dbapi_error)
    return exc.DBAPIError.instance(
        compiled.sql,
        args,
        dbapi_error,  # type: ignore[arg-type]
        dbapi_base,
        hide_parameters=True,
        dialect=dialect,
        connection_invalidated=disconnect,
    )
