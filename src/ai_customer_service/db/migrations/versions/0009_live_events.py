"""live events: every conversation and ticket event, kept briefly for the console and widget streams

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cs_live_events",
        # BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (never reused)
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cs_live_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_cs_live_events_session_seq", "cs_live_events", ["session_id", "seq"], unique=False)
    op.create_index("ix_cs_live_events_created_at", "cs_live_events", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cs_live_events_created_at", table_name="cs_live_events")
    op.drop_index("ix_cs_live_events_session_seq", table_name="cs_live_events")
    op.drop_table("cs_live_events")
