"""Dashboard indexes: certificates by owner identity, expiry and activation

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 03:30:00

The dashboard counts and lists certificates in force in SQL (portal.services.expiring):
the in-force rule probes one owner's certificates (partner_id was indexed, identity_id
was not), and expiry buckets, the expiring list and upcoming activations are ranges over
not_after and activate_at.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = ("identity_id", "not_after", "activate_at")
# Most certificates are partners': SQLite's statistics over an index full of NULLs would
# make the planner shun it, so the identity index leaves them out.
OURS = sa.text("identity_id IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_identity_id"), ["identity_id"], unique=False,
            sqlite_where=OURS, postgresql_where=OURS,
        )  # fmt: skip
        for column in COLUMNS[1:]:
            batch_op.create_index(batch_op.f(f"ix_certificates_{column}"), [column], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_certificates_{column}"))
