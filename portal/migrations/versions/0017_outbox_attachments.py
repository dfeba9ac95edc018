"""Outbox attachments: files sent with a message (a campaign's .ics invitation)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 03:10:00

A JSON list of {filename, content_type, content} per message, text only; messages already
queued have none (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachments", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("attachments")
