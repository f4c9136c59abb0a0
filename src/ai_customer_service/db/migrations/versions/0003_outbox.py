"""platform outbox and delivery attempts

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_TYPES = (
    "'message.received', 'intent.resolved', 'handoff.triggered', 'ticket.created', 'reply.generated', "
    "'ticket.assigned', 'ticket.resolved', 'ticket.closed', 'ticket.reopened', 'agent.replied', "
    "'message.deduplicated'"
)


def upgrade() -> None:
    op.create_table(
        "cs_platform_outbox",
        # BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (never reused)
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("source_message_id", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_cs_platform_outbox_status")
        ),
        sa.CheckConstraint(f"type IN ({_EVENT_TYPES})", name=op.f("ck_cs_platform_outbox_type")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cs_platform_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_cs_platform_outbox_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_cs_platform_outbox_due", "cs_platform_outbox", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_cs_platform_outbox_session",
        "cs_platform_outbox",
        ["destination", "session_id", "seq"],
        unique=False,
    )

    op.create_table(
        "cs_platform_outbox_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["cs_platform_outbox.id"],
            name=op.f("fk_cs_platform_outbox_attempts_event_id_cs_platform_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_platform_outbox_attempts")),
        sa.UniqueConstraint(
            "event_id",
            "round",
            "attempt",
            name=op.f("uq_cs_platform_outbox_attempts_event_id_round_attempt"),
        ),
    )


def downgrade() -> None:
    op.drop_table("cs_platform_outbox_attempts")
    op.drop_index("ix_cs_platform_outbox_session", table_name="cs_platform_outbox")
    op.drop_index("ix_cs_platform_outbox_due", table_name="cs_platform_outbox")
    op.drop_table("cs_platform_outbox")
