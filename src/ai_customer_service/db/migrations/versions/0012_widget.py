"""the web chat widget: sites, the visitor-token key, rate-limit counters; a customer's sessions index

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cs_widget_sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=40), nullable=False),
        sa.Column("origins", _JSON, nullable=False),
        sa.Column("identity_secret", sa.String(length=128), nullable=True),
        sa.Column("rate_limit_messages", sa.Integer(), nullable=False),
        sa.Column("rate_limit_visitors", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_widget_sites")),
    )
    op.create_index("uq_cs_widget_sites_public_key", "cs_widget_sites", ["public_key"], unique=True)
    op.create_index("uq_cs_widget_sites_name", "cs_widget_sites", ["name"], unique=True)
    op.create_table(
        "cs_widget_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_widget_keys")),
    )
    op.create_table(
        "cs_widget_counters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_widget_counters")),
        sa.UniqueConstraint("key", "window_start", name=op.f("uq_cs_widget_counters_key_window_start")),
    )
    op.create_index(
        "ix_cs_widget_counters_window_start", "cs_widget_counters", ["window_start"], unique=False
    )
    # a widget visitor's history spans their closed sessions too (the unique index covers open ones)
    op.create_index(
        "ix_cs_sessions_channel_open_id", "cs_sessions", ["channel", "open_id"], if_not_exists=True
    )


def downgrade() -> None:
    op.drop_index("ix_cs_sessions_channel_open_id", table_name="cs_sessions")
    op.drop_index("ix_cs_widget_counters_window_start", table_name="cs_widget_counters")
    op.drop_table("cs_widget_counters")
    op.drop_table("cs_widget_keys")
    op.drop_index("uq_cs_widget_sites_name", table_name="cs_widget_sites")
    op.drop_index("uq_cs_widget_sites_public_key", table_name="cs_widget_sites")
    op.drop_table("cs_widget_sites")
