"""a conversation belongs to its source; signatures remember their path; one dedup event per window

* ``cs_sessions.source`` ("" = the generic webhook, else the platform's name) joins the unique key of
  the open session: ``(channel, open_id, source) WHERE status <> 'closed'``. Another source with the
  same ``(channel, open_id)`` gets its own conversation instead of taking over the existing one.
  Existing sessions get ``source = COALESCE(platform, '')``.
* ``cs_signature_uses``: the path a v1-signed request was first accepted on (refuses the same signed
  bytes on another path, ``CS_AUTH_4035``).
* ``cs_message_dedup.notified_at``: when ``message.deduplicated`` last went out for the message.

Revision ID: 0010
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status <> 'closed'"


def upgrade() -> None:
    op.add_column("cs_sessions", sa.Column("source", sa.String(length=64), server_default="", nullable=False))
    op.execute("UPDATE cs_sessions SET source = platform WHERE platform IS NOT NULL")
    op.drop_index("uq_cs_sessions_open_customer", table_name="cs_sessions")
    op.create_index(
        "uq_cs_sessions_open_customer",
        "cs_sessions",
        ["channel", "open_id", "source"],
        unique=True,
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.add_column("cs_message_dedup", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "cs_signature_uses",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=600), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_cs_signature_uses")),
    )
    op.create_index("ix_cs_signature_uses_created_at", "cs_signature_uses", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cs_signature_uses_created_at", table_name="cs_signature_uses")
    op.drop_table("cs_signature_uses")
    with op.batch_alter_table("cs_message_dedup") as batch:
        batch.drop_column("notified_at")
    # fails if a customer now has open sessions through two sources: close one of them first
    op.drop_index("uq_cs_sessions_open_customer", table_name="cs_sessions")
    op.create_index(
        "uq_cs_sessions_open_customer",
        "cs_sessions",
        ["channel", "open_id"],
        unique=True,
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    with op.batch_alter_table("cs_sessions") as batch:
        batch.drop_column("source")
