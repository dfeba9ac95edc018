"""Outbox backoff and HTML: a message that failed waits before its next try; HTML bodies

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 01:40:00

Messages already waiting get no wait: they are tried at the next run, as before; they have
no HTML body of their own (delivery makes one from their text).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("html_body", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("html_body")
        batch_op.drop_column("next_attempt_at")
