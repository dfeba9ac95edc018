"""Partner language: the language of the emails a partner receives

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 04:00:00

A plain ADD COLUMN with a server default, so existing partners read "en" (as before) and
SQLite does not recreate the table (which would drop the config revision triggers of 0015).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add partners.language, "en" for every existing partner."""
    op.add_column(
        "partners", sa.Column("language", sa.String(8), nullable=False, server_default="en")
    )


def downgrade() -> None:
    """Drop partners.language (SQLite 3.35+ drops a column without recreating the table)."""
    op.drop_column("partners", "language")
