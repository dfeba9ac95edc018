"""Audit hash chain: prev_hash and hash on every audit event, existing rows chained

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 04:00:00

Each event stores the hash of the event before it and the hash of its own canonical
content (portal.domain.audit_chain), so `portal audit verify` can tell an edited,
deleted, inserted or reordered event. Existing events are chained here in id order,
in batches (keyset on the id, one executemany UPDATE per batch), so a million rows
take seconds, not minutes, and memory stays bounded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portal.domain import audit_chain

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BATCH = 20_000


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing(op.get_bind())


def _chain_existing(connection: sa.Connection) -> None:
    """Set prev_hash and hash on every event, oldest id first."""
    events = sa.table(
        "audit_events",
        *(sa.column(name) for name in audit_chain.FIELDS if name not in ("details", "occurred_at")),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("details", sa.JSON),
        sa.column("hash"),
    )
    read = sa.select(*(events.c[name] for name in audit_chain.FIELDS if name != "prev_hash"))
    write = (
        sa.update(events)
        .where(events.c.id == sa.bindparam("b_id"))
        .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash"))
    )
    last_id, prev_hash = None, audit_chain.GENESIS
    while True:
        stmt = read.order_by(events.c.id).limit(BATCH)
        if last_id is not None:
            stmt = stmt.where(events.c.id > last_id)
        rows = [dict(row._mapping) for row in connection.execute(stmt)]
        if not rows:
            return
        prev_hash = audit_chain.chain(rows, prev_hash)
        connection.execute(
            write,
            [{"b_id": r["id"], "b_prev": r["prev_hash"], "b_hash": r["hash"]} for r in rows],
        )
        last_id = rows[-1]["id"]


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
