"""widget conversations get their site's source; the outbox claim reads an index of pending events

A widget conversation's source was "" on channel ``widget``, the same as the generic webhook's: a
gateway holding the webhook secret that knew a visitor's ``open_id`` could write into that visitor's
conversation. Widget conversations now have the source ``widget:<site public key>``
(``conversation.sources.widget_source``). Existing ones are moved: every session on channel ``widget`` with
source "" whose ``open_id`` is ``w:<key>:…`` of an existing site, and the dedup records of their
messages (so a visitor's retry of a message sent before the upgrade is still answered from its record).

``ix_cs_platform_outbox_pending`` (``seq`` of pending events): the delivery worker's claim takes the
oldest pending events; without it PostgreSQL may walk the primary key through every delivered event
kept for the retention period.

Revision ID: 0016
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a session's site: its open_id is "w:<public key>:..." (substr, not LIKE: a key's "_" must not match
# any character); plain SQL that runs the same on SQLite and PostgreSQL, and offline (--sql)
_SITE_OF_SESSION = (
    "FROM cs_widget_sites s WHERE substr(cs_sessions.open_id, 1, length(s.public_key) + 3) "
    "= 'w:' || s.public_key || ':'"
)
_WIDGET_SOURCE = "substr(source, 1, 7) = 'widget:'"
_PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_index(
        "ix_cs_platform_outbox_pending",
        "cs_platform_outbox",
        ["seq"],
        unique=False,
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )
    op.execute(
        f"UPDATE cs_sessions SET source = (SELECT 'widget:' || s.public_key {_SITE_OF_SESSION}) "
        f"WHERE channel = 'widget' AND source = '' AND EXISTS (SELECT 1 {_SITE_OF_SESSION})"
    )
    op.execute(
        "UPDATE cs_message_dedup SET source = (SELECT s.source FROM cs_sessions s "
        "WHERE s.id = cs_message_dedup.session_id) "
        "WHERE channel = 'widget' AND source = '' AND session_id IN "
        f"(SELECT id FROM cs_sessions WHERE channel = 'widget' AND {_WIDGET_SOURCE})"
    )


def downgrade() -> None:
    op.drop_index("ix_cs_platform_outbox_pending", table_name="cs_platform_outbox")
    # fails if a visitor's open_id now also has an open conversation through the generic webhook
    for table in ("cs_message_dedup", "cs_sessions"):
        op.execute(f"UPDATE {table} SET source = '' WHERE channel = 'widget' AND {_WIDGET_SOURCE}")
