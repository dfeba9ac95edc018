"""`portal audit verify`: check the audit trail's hash chain from the first event to the last."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from portal.extensions import db
from portal.services import audit

audit_group = AppGroup("audit", help="The audit trail.")


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def audit_verify_command(as_json: bool) -> None:
    """Recompute every event's hash in id order; exit 1 naming the first bad event."""
    walk = audit.verify(db.session)
    db.session.rollback()  # read only
    broken = walk.broken
    if as_json:
        document: dict[str, object] = {
            "intact": broken is None,
            "checked": walk.checked,
            "head": {"id": walk.head_id, "hash": walk.head_hash} if broken is None else None,
            "first_bad": None
            if broken is None
            else {
                "id": broken.id,
                "occurred_at": broken.occurred_at.isoformat() if broken.occurred_at else None,
                "action": broken.action,
                "reason": broken.reason,
            },
        }
        click.echo(json.dumps(document, indent=2))
    elif broken is None:
        click.echo(f"Audit trail intact: {walk.checked} events checked.")
        if walk.head_id is not None:
            click.echo(f"Newest event: #{walk.head_id}, hash {walk.head_hash}")
    else:
        when = (
            f"{broken.occurred_at:%Y-%m-%d %H:%M:%S} UTC" if broken.occurred_at else "unknown time"
        )
        click.echo(f"Audit trail BROKEN after {walk.checked} events checked.", err=True)
        click.echo(
            f"First bad event: #{broken.id} at {when}, action {broken.action or '?'}: "
            f"{broken.reason}.",
            err=True,
        )
    if broken is not None:
        raise SystemExit(1)
