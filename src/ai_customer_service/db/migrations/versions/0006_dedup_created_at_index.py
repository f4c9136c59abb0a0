"""an index on the dedup records' age, for their retention purge

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # if_not_exists: an operator may have built it beforehand with CREATE INDEX CONCURRENTLY (CHANGELOG)
    op.create_index("ix_cs_message_dedup_created_at", "cs_message_dedup", ["created_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_cs_message_dedup_created_at", table_name="cs_message_dedup")
