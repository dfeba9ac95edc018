"""Staff sessions record their last activity and their last password check

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 04:00:00

last_seen_at lets the server end a session left idle (PORTAL_SESSION_IDLE_MINUTES);
authenticated_at lets sensitive pages ask for the password again when it was typed too
long ago (PORTAL_REAUTH_MINUTES). Both are empty for sessions opened before: the
session's start stands in for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = ("last_seen_at", "authenticated_at")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
