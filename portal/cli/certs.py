"""`portal cert inspect` and `portal keys rotate`."""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

import click
from flask.cli import AppGroup

from portal.cli.common import UNREADABLE_CODES, choice_of, refusals
from portal.clock import command_now
from portal.domain.certs import MAX_INPUT_BYTES, Usage
from portal.domain.certs import inspect as inspect_certificate
from portal.extensions import db, keyring
from portal.services import audit, certificates, two_factor, webhooks
from portal.services.actor import Actor

cert_group = AppGroup("cert", help="Certificate files.")


@cert_group.command("inspect")
@click.argument("file", type=click.File("rb"))
@click.option("--usage", default=Usage.BOTH.value, show_default=True, type=choice_of(Usage))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def cert_inspect_command(file: BinaryIO, usage: str, as_json: bool) -> None:
    """Check a certificate file as a partner upload would be checked.

    Exit 0 acceptable, 1 rejected, 2 unreadable (not a certificate file at all) or misuse.
    """
    data = file.read(MAX_INPUT_BYTES + 1)
    report = inspect_certificate(data, usage=Usage(usage), now=command_now())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for finding in report.findings:
            click.echo(f"{finding.severity.upper():8} {finding.code}: {finding.message}")
    if UNREADABLE_CODES & set(report.codes):
        sys.exit(2)
    sys.exit(0 if report.acceptable else 1)


keys_group = AppGroup("keys", help="Private keys at rest.")


@keys_group.command("rotate")
def keys_rotate_command() -> None:
    """Re-encrypt every stored private key under the newest key-encryption key."""
    ring = keyring()
    with refusals():
        rotated, total = certificates.rotate_keys(db.session, ring)
        secrets_rotated, secrets_total = webhooks.rotate_secrets(db.session, ring)
        totp_rotated, totp_total = two_factor.rotate_secrets(db.session, ring)
        audit.record(
            db.session,
            Actor.command_line(),
            "keys.rotated",
            object_type="keyring",
            object_id=ring.newest_key_id,
            summary=f"Re-encrypted {rotated} of {total} private keys "
            f"and {secrets_rotated} of {secrets_total} webhook secrets "
            f"under key {ring.newest_key_id}",
            details={
                "rotated": rotated,
                "total": total,
                "webhook_secrets_rotated": secrets_rotated,
                "webhook_secrets_total": secrets_total,
                "totp_secrets_rotated": totp_rotated,
                "totp_secrets_total": totp_total,
            },
        )
    click.echo(
        f"Re-encrypted {rotated} of {total} stored private keys under key {ring.newest_key_id}."
    )
    if secrets_total:
        click.echo(f"Re-encrypted {secrets_rotated} of {secrets_total} webhook secrets.")
    if totp_total:
        click.echo(f"Re-encrypted {totp_rotated} of {totp_total} two-factor secrets.")
