"""Dashboard indexes: certificates by owner identity, expiry and activation

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 03:30:00

The dashboard counts and lists certificates in force in SQL (portal.services.expiring):
the in-force rule probes one owner's certificates (partner_id was indexed, identity_id
was not), and expiry buckets, the expiring list and upcoming activations are ranges over
not_after and activate_at.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("identity_id", "not_after", "activate_at")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.create_index(batch_op.f(f"ix_certificates_{column}"), [column], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_certificates_{column}"))
