"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cs_audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("before_state", sa.String(length=32), nullable=True),
        sa.Column("after_state", sa.String(length=32), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_audit_logs")),
    )
    op.create_index("ix_cs_audit_logs_created_at", "cs_audit_logs", ["created_at"], unique=False)
    op.create_index(
        "ix_cs_audit_logs_object", "cs_audit_logs", ["object_type", "object_id", "created_at"], unique=False
    )

    op.create_table(
        "cs_message_dedup",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_message_dedup")),
        sa.UniqueConstraint(
            "source", "channel", "message_id", name=op.f("uq_cs_message_dedup_source_channel_message_id")
        ),
    )
    op.create_table(
        "cs_principals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=12), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f("ck_cs_principals_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_principals")),
    )
    op.create_index("uq_cs_principals_name", "cs_principals", ["name"], unique=True)
    op.create_index("uq_cs_principals_token_hash", "cs_principals", ["token_hash"], unique=True)

    op.create_table(
        "cs_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("open_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("low_confidence_streak", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "status IN ('idle', 'processing', 'waiting_feedback', 'handoff', 'closed')",
            name=op.f("ck_cs_sessions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_sessions")),
    )
    op.create_index(
        "ix_cs_sessions_status_last_message_at", "cs_sessions", ["status", "last_message_at"], unique=False
    )
    op.create_index(
        "uq_cs_sessions_open_customer",
        "cs_sessions",
        ["channel", "open_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'closed'"),
        sqlite_where=sa.text("status <> 'closed'"),
    )

    op.create_table(
        "cs_feedback",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_cs_feedback_score")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["cs_sessions.id"],
            name=op.f("fk_cs_feedback_session_id_cs_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_feedback")),
    )
    op.create_index("ix_cs_feedback_session_id", "cs_feedback", ["session_id"], unique=False)

    op.create_table(
        "cs_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("author_type", sa.String(length=10), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("channel_message_id", sa.String(length=128), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("reply_to", sa.String(length=128), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("citations", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("decision", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "author_type IN ('customer', 'bot', 'agent', 'system')", name=op.f("ck_cs_messages_author_type")
        ),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_cs_messages_direction")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["cs_sessions.id"],
            name=op.f("fk_cs_messages_session_id_cs_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_messages")),
    )
    op.create_index(
        "ix_cs_messages_session_id_created_at", "cs_messages", ["session_id", "created_at"], unique=False
    )

    op.create_table(
        "cs_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("open_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("context", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_agent_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("priority IN ('P1', 'P2', 'P3', 'P4')", name=op.f("ck_cs_tickets_priority")),
        sa.CheckConstraint(
            "status IN ('open', 'assigned', 'processing', 'resolved', 'closed')",
            name=op.f("ck_cs_tickets_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["cs_principals.id"], name=op.f("fk_cs_tickets_assignee_id_cs_principals")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["cs_sessions.id"],
            name=op.f("fk_cs_tickets_session_id_cs_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_tickets")),
    )
    op.create_index("ix_cs_tickets_assignee_id_status", "cs_tickets", ["assignee_id", "status"], unique=False)
    op.create_index(
        "ix_cs_tickets_status_priority_created_at",
        "cs_tickets",
        ["status", "priority", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_cs_tickets_active_session",
        "cs_tickets",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'assigned', 'processing')"),
        sqlite_where=sa.text("status IN ('open', 'assigned', 'processing')"),
    )

    op.create_table(
        "cs_ticket_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["cs_principals.id"], name=op.f("fk_cs_ticket_notes_author_id_cs_principals")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["cs_tickets.id"],
            name=op.f("fk_cs_ticket_notes_ticket_id_cs_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_ticket_notes")),
    )
    op.create_index("ix_cs_ticket_notes_ticket_id", "cs_ticket_notes", ["ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cs_ticket_notes_ticket_id", table_name="cs_ticket_notes")

    op.drop_table("cs_ticket_notes")
    op.drop_index(
        "uq_cs_tickets_active_session",
        table_name="cs_tickets",
        postgresql_where=sa.text("status IN ('open', 'assigned', 'processing')"),
        sqlite_where=sa.text("status IN ('open', 'assigned', 'processing')"),
    )
    op.drop_index("ix_cs_tickets_status_priority_created_at", table_name="cs_tickets")
    op.drop_index("ix_cs_tickets_assignee_id_status", table_name="cs_tickets")

    op.drop_table("cs_tickets")
    op.drop_index("ix_cs_messages_session_id_created_at", table_name="cs_messages")

    op.drop_table("cs_messages")
    op.drop_index("ix_cs_feedback_session_id", table_name="cs_feedback")

    op.drop_table("cs_feedback")
    op.drop_index(
        "uq_cs_sessions_open_customer",
        table_name="cs_sessions",
        postgresql_where=sa.text("status <> 'closed'"),
        sqlite_where=sa.text("status <> 'closed'"),
    )
    op.drop_index("ix_cs_sessions_status_last_message_at", table_name="cs_sessions")

    op.drop_table("cs_sessions")
    op.drop_index("uq_cs_principals_token_hash", table_name="cs_principals")
    op.drop_index("uq_cs_principals_name", table_name="cs_principals")

    op.drop_table("cs_principals")
    op.drop_table("cs_message_dedup")
    op.drop_index("ix_cs_audit_logs_object", table_name="cs_audit_logs")
    op.drop_index("ix_cs_audit_logs_created_at", table_name="cs_audit_logs")

    op.drop_table("cs_audit_logs")
