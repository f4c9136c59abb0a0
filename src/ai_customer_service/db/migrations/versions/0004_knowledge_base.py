"""knowledge base entries and the embedding cache

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cs_kb_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("questions", _JSON, nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'archived')", name=op.f("ck_cs_kb_entries_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cs_kb_entries")),
    )
    op.create_index("ix_cs_kb_entries_status", "cs_kb_entries", ["status"], unique=False)
    op.create_index("uq_cs_kb_entries_key", "cs_kb_entries", ["key"], unique=True)
    op.create_index("uq_cs_kb_entries_title", "cs_kb_entries", ["title"], unique=True)
    op.create_table(
        "cs_kb_embeddings",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", "text_hash", name=op.f("pk_cs_kb_embeddings")),
    )


def downgrade() -> None:
    op.drop_table("cs_kb_embeddings")
    op.drop_index("uq_cs_kb_entries_title", table_name="cs_kb_entries")
    op.drop_index("uq_cs_kb_entries_key", table_name="cs_kb_entries")
    op.drop_index("ix_cs_kb_entries_status", table_name="cs_kb_entries")
    op.drop_table("cs_kb_entries")
