"""Outbox messages carry their link in a column, never in their text

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 21:24:39.067598

Unsent bodies move to the new form: the placeholder the link email put on its own line
becomes the link mark, and its link goes into link_id. Any other "[[link:ID]]" in a body
is text someone typed (a reason, a name) and stays text.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Copies, not imports: a revision must keep working when the code it came with changes.
LINK_MARK = "\ufffc"
OLD_PLACEHOLDER = re.compile(r"\[\[link:([A-Za-z0-9_-]{16,32})\]\]")
# The line the link email put before its placeholder; nothing typed followed it.
LINK_LEAD = "Open this link (no account needed):\n"

messages = sa.table(
    "outbox_messages",
    sa.column("id", sa.Integer),
    sa.column("body", sa.Text),
    sa.column("link_id", sa.String),
    sa.column("dedupe_key", sa.String),
    sa.column("sent_at", sa.DateTime),
)
share_links = sa.table("share_links", sa.column("id", sa.String))


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_messages_link_id_share_links"),
            "share_links",
            ["link_id"],
            ["id"],
            ondelete="SET NULL",
        )
    connection = op.get_bind()
    unsent = connection.execute(
        sa.select(messages.c.id, messages.c.body, messages.c.dedupe_key).where(
            messages.c.sent_at.is_(None)
        )
    ).all()
    for message_id, body, dedupe_key in unsent:
        new_body, link_id = new_form(body, dedupe_key)
        if link_id is not None and not _link_exists(connection, link_id):
            link_id = None  # the link is gone: the mark becomes a note at delivery
        if new_body != body or link_id is not None:
            connection.execute(
                sa.update(messages)
                .where(messages.c.id == message_id)
                .values(body=new_body, link_id=link_id)
            )


def new_form(body: str, dedupe_key: str | None) -> tuple[str, str | None]:
    """BODY with its link placeholder as the mark, and that link's id (None: no link).

    Only the link email (queued without a dedupe key) had a placeholder: the last one in
    its body, on the line after LINK_LEAD. Stray marks are dropped so only that one counts.
    """
    text = body.replace(LINK_MARK, "")
    if dedupe_key is not None:
        return text, None
    found = list(OLD_PLACEHOLDER.finditer(text))
    if not found or not text[: found[-1].start()].endswith(LINK_LEAD):
        return text, None
    last = found[-1]
    return text[: last.start()] + LINK_MARK + text[last.end() :], last.group(1)


def _link_exists(connection: sa.Connection, link_id: str) -> bool:
    return (
        connection.scalar(sa.select(share_links.c.id).where(share_links.c.id == link_id))
        is not None
    )


def downgrade() -> None:
    """Revert this revision: unsent bodies get their link back as a placeholder."""
    connection = op.get_bind()
    unsent = connection.execute(
        sa.select(messages.c.id, messages.c.body, messages.c.link_id).where(
            messages.c.sent_at.is_(None), messages.c.body.contains(LINK_MARK)
        )
    ).all()
    for message_id, body, link_id in unsent:
        placeholder = f"[[link:{link_id}]]" if link_id else ""
        connection.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(body=body.replace(LINK_MARK, placeholder))
        )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_messages_link_id_share_links"), type_="foreignkey"
        )
        batch_op.drop_column("link_id")
