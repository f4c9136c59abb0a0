"""Alembic environment: one migration tree for SQLite and PostgreSQL.

Online runs get a live connection from :mod:`ai_customer_service.db.migrate` via
``config.attributes["connection"]``; offline runs (``migrate --sql``) render PostgreSQL SQL.
"""

from __future__ import annotations

from alembic import context

from ai_customer_service.db.models import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or "postgresql://",
        dialect_name="postgresql",
        target_metadata=metadata,
        literal_binds=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
