"""one CSAT rating per session: a second rating replaces the first (replays cannot inflate CSAT)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # keep each session's latest rating
    op.execute(
        """
        DELETE FROM cs_feedback WHERE EXISTS (
            SELECT 1 FROM cs_feedback AS newer
            WHERE newer.session_id = cs_feedback.session_id
              AND (newer.created_at > cs_feedback.created_at
                   OR (newer.created_at = cs_feedback.created_at AND newer.id > cs_feedback.id))
        )
        """
    )
    op.drop_index("ix_cs_feedback_session_id", table_name="cs_feedback")
    op.create_index("ix_cs_feedback_session_id", "cs_feedback", ["session_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_cs_feedback_session_id", table_name="cs_feedback")
    op.create_index("ix_cs_feedback_session_id", "cs_feedback", ["session_id"])
