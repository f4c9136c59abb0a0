"""the original's shape: JSON audit states, tenant_id, source_ip; cs_schema_migrations

The original's operational queries read ``cs_audit_logs.after_state`` as JSON (``after_state->>'intent'``
on ``message_processed`` rows) and know ``tenant_id`` and ``source_ip``. Existing text states become JSON
strings (``assigned`` → ``"assigned"``), which read back as the same Python strings.

``cs_schema_migrations`` is the original's bookkeeping table (the runbook's checks read it); an adopted
database already has it, so it is created only when missing. The migration runner fills it.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    op.execute(
        "CREATE TABLE IF NOT EXISTS cs_schema_migrations (version VARCHAR(255) NOT NULL, "
        f"applied_at {'TIMESTAMPTZ' if postgres else 'DATETIME'} NOT NULL DEFAULT CURRENT_TIMESTAMP, "
        "CONSTRAINT pk_cs_schema_migrations PRIMARY KEY (version))"
    )
    if postgres:
        for column in ("before_state", "after_state"):
            op.execute(f"ALTER TABLE cs_audit_logs ALTER COLUMN {column} TYPE JSONB USING to_jsonb({column})")
    else:
        for column in ("before_state", "after_state"):
            op.execute(f"UPDATE cs_audit_logs SET {column} = json_quote({column}) WHERE {column} IS NOT NULL")
        with op.batch_alter_table("cs_audit_logs") as batch:
            batch.alter_column("before_state", type_=_JSON, existing_nullable=True)
            batch.alter_column("after_state", type_=_JSON, existing_nullable=True)
    op.add_column(
        "cs_audit_logs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False, server_default="default"),
    )
    op.add_column("cs_audit_logs", sa.Column("source_ip", sa.String(length=45), nullable=True))


def downgrade() -> None:
    # cs_schema_migrations stays: the original's bookkeeping may be in it
    with op.batch_alter_table("cs_audit_logs") as batch:
        batch.drop_column("source_ip")
        batch.drop_column("tenant_id")
    # back to text states (an object, e.g. of a message_processed row, becomes its JSON text, cut)
    if op.get_context().dialect.name == "postgresql":
        for column in ("before_state", "after_state"):
            op.execute(
                f"ALTER TABLE cs_audit_logs ALTER COLUMN {column} TYPE VARCHAR(32) "
                f"USING left({column} #>> '{{}}', 32)"
            )
    else:
        for column in ("before_state", "after_state"):
            op.execute(f"UPDATE cs_audit_logs SET {column} = substr(json_extract({column}, '$'), 1, 32)")
        with op.batch_alter_table("cs_audit_logs") as batch:
            batch.alter_column("before_state", type_=sa.String(length=32), existing_nullable=True)
            batch.alter_column("after_state", type_=sa.String(length=32), existing_nullable=True)
