"""Submissions are no longer 'cancelled'

No code ever set a submission's status to 'cancelled', so the state is dropped from the
CHECK constraint. A row holding it can only have been written by hand; it becomes
'rejected' (the reason is kept, or says it was cancelled) so the new constraint holds.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CANCELLED_REASON = "Cancelled."


def upgrade() -> None:
    """Apply this revision."""
    submissions = sa.table(
        "submissions",
        sa.column("status", sa.String),
        sa.column("rejection_reason", sa.Text),
    )
    op.execute(
        submissions.update()
        .where(submissions.c.status == "cancelled")
        .values(
            status="rejected",
            rejection_reason=sa.func.coalesce(submissions.c.rejection_reason, CANCELLED_REASON),
        )
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_submissions_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_submissions_status"), "status IN ('received', 'approved', 'rejected')"
        )


def downgrade() -> None:
    """Revert this revision (rows made 'rejected' by the upgrade stay rejected)."""
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_submissions_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_submissions_status"),
            "status IN ('received', 'rejected', 'approved', 'cancelled')",
        )
