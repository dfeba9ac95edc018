"""Config revision: a counter the database bumps on every change to what the config API says

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 03:10:00

One row, `config_revision.value`, raised by triggers after any insert, update or delete on
certificates, partners and identities (and a truncate, on PostgreSQL), in the transaction
that makes the change. The web processes cache the config plan keyed by it
(portal/services/config_cache.py). A later migration that recreates one of those tables on
SQLite (batch_alter_table with recreate) drops its triggers: it must create them again with
`create_triggers()` below (tests/test_config_cache.py checks they exist at head).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("certificates", "partners", "identities")
BUMP = "UPDATE config_revision SET value = value + 1 WHERE id = 1"


def create_triggers() -> None:
    """The triggers that bump the revision, in this database's dialect."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION config_revision_bump() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS config_revision_{table} ON {table}")
            op.execute(
                f"CREATE TRIGGER config_revision_{table} "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION config_revision_bump()"
            )
        return
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            name = f"config_revision_{table}_{event}"
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} BEGIN {BUMP}; END")


def drop_triggers() -> None:
    """Remove what create_triggers made."""
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS config_revision_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS config_revision_bump()")
        return
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS config_revision_{table}_{event}")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "config_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_config_revision_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_revision")),
    )
    op.execute("INSERT INTO config_revision (id, value) VALUES (1, 0)")
    create_triggers()


def downgrade() -> None:
    """Revert this revision."""
    drop_triggers()
    op.drop_table("config_revision")
