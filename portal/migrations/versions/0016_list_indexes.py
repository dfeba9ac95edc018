"""Indexes for the big staff lists: every filter and sort they use, and trigram search

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 03:20:00

Keyset pages read these indexes in order from a cursor, so a deep page costs what the first
page costs: partners by (name, id), one identity's partners by (identity_id, name, id) (both
with as2_id, so SQLite's search filters inside the index), a partner's links by (partner_id,
created_at, id), audit events by each filter then id. On PostgreSQL, lower(name) and
lower(as2_id) get GIN trigram indexes (pg_trgm, created when missing) so a search for text
anywhere in them is indexed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {"ix_partners_name_trgm": "name", "ix_partners_as2_id_trgm": "as2_id"}


def upgrade() -> None:
    """Apply this revision."""
    # as2_id rides along: SQLite's search (LIKE '%text%') then filters inside the index.
    op.create_index("ix_partners_name_id", "partners", ["name", "id", "as2_id"])
    op.create_index(
        "ix_partners_identity_name", "partners", ["identity_id", "name", "id", "as2_id"]
    )
    op.drop_index("ix_partners_identity_id", table_name="partners")
    op.create_index(
        "ix_share_links_partner_created", "share_links", ["partner_id", "created_at", "id"]
    )
    op.drop_index("ix_share_links_partner_id", table_name="share_links")
    op.drop_index("ix_audit_events_object", table_name="audit_events")
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id", "id"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])
    if op.get_bind().dialect.name == "postgresql":
        opclass = f"{_trigram_schema()}.gin_trgm_ops"
        for name, column in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON partners USING gin (lower({column}) {opclass})")


def _trigram_schema() -> str:
    """The (quoted) schema of pg_trgm, installing it first when the database lacks it.

    A new install goes to `public` when it may (so dropping some other schema never takes
    the extension, and the indexes using it, along); else to the current schema.
    """
    bind = op.get_bind()
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    schema = bind.scalar(find)
    if schema is None:
        public = bind.scalar(
            sa.text(
                "SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace "
                "WHERE nspname = 'public'"
            )
        )
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if public else ""))
        schema = bind.scalar(find)
    return '"' + str(schema).replace('"', '""') + '"'


def downgrade() -> None:
    """Revert this revision (pg_trgm stays installed: other schemas may use it)."""
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.drop_index(name, table_name="partners")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_index("ix_audit_events_object", table_name="audit_events")
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id"])
    op.create_index("ix_share_links_partner_id", "share_links", ["partner_id"])
    op.drop_index("ix_share_links_partner_created", table_name="share_links")
    op.create_index("ix_partners_identity_id", "partners", ["identity_id"])
    op.drop_index("ix_partners_identity_name", table_name="partners")
    op.drop_index("ix_partners_name_id", table_name="partners")
