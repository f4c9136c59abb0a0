"""an index on a session's tickets by age: every customer message looks up the latest one

Without it the lookup (``WHERE session_id = ? ORDER BY created_at DESC LIMIT 1``) scanned the whole
``cs_tickets`` table once per message.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # if_not_exists: an operator may have built it beforehand with CREATE INDEX CONCURRENTLY (CHANGELOG)
    op.create_index(
        "ix_cs_tickets_session_id_created_at", "cs_tickets", ["session_id", "created_at"], if_not_exists=True
    )


def downgrade() -> None:
    op.drop_index("ix_cs_tickets_session_id_created_at", table_name="cs_tickets")
