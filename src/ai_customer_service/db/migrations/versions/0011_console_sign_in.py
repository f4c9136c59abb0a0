"""console sign-in: an optional password per principal, failed sign-in counters, console sessions;
an index serving the console inbox (active tickets by priority, then age)

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "status IN ('open', 'assigned', 'processing')"


def upgrade() -> None:
    op.add_column("cs_principals", sa.Column("password_hash", sa.String(length=255), nullable=True))
    op.add_column(
        "cs_principals",
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "cs_principals", sa.Column("sign_in_blocked_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "cs_console_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["cs_principals.id"],
            name=op.f("fk_cs_console_sessions_principal_id_cs_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_console_sessions")),
    )
    op.create_index("uq_cs_console_sessions_token_hash", "cs_console_sessions", ["token_hash"], unique=True)
    op.create_index("ix_cs_console_sessions_expires_at", "cs_console_sessions", ["expires_at"], unique=False)
    op.create_index(
        "ix_cs_tickets_inbox",
        "cs_tickets",
        ["priority", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text(_ACTIVE),
        sqlite_where=sa.text(_ACTIVE),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_cs_tickets_inbox", table_name="cs_tickets")
    op.drop_index("ix_cs_console_sessions_expires_at", table_name="cs_console_sessions")
    op.drop_index("uq_cs_console_sessions_token_hash", table_name="cs_console_sessions")
    op.drop_table("cs_console_sessions")
    with op.batch_alter_table("cs_principals") as batch:
        batch.drop_column("sign_in_blocked_until")
        batch.drop_column("failed_sign_ins")
        batch.drop_column("password_hash")
