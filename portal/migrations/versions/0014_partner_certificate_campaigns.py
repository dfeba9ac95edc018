"""Partner-certificate campaigns: a campaign has a kind, and only a rotation names our certificate

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 03:00:00

Campaigns already started are rotations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="rotation")
        )
        batch_op.add_column(sa.Column("expiring_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("certificate_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(
            batch_op.f("ck_campaigns_kind"), "kind IN ('rotation', 'partner_certificates')"
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_campaigns_certificate_only_for_rotation"),
            "(kind = 'rotation') = (certificate_id IS NOT NULL)",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_campaigns_request_asks_upload"), "kind = 'rotation' OR request_upload"
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None, existing_type=sa.String(length=32))


def downgrade() -> None:
    """Revert this revision (partner-certificate campaigns are removed: they have no certificate)."""
    op.execute("DELETE FROM campaigns WHERE kind <> 'rotation'")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_campaigns_request_asks_upload"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("ck_campaigns_certificate_only_for_rotation"), type_="check"
        )
        batch_op.drop_constraint(batch_op.f("ck_campaigns_kind"), type_="check")
        batch_op.alter_column("certificate_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("expiring_before")
        batch_op.drop_column("kind")
