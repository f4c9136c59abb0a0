"""the platform a session came through (routes its outbound events)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cs_sessions", sa.Column("platform", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cs_sessions") as batch:
        batch.drop_column("platform")
