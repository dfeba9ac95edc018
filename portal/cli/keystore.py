"""`portal identity export`: our keys as a PKCS#12 file for an AS2 engine (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from portal.cli.common import actor_as, choice_of, cli_moment, read_stdin_secret, refusals
from portal.cli.directory import identity_group
from portal.clock import command_now
from portal.domain.aliases import certificate_alias
from portal.domain.roles import Permission
from portal.domain.vocab import Environment, Usage
from portal.extensions import db, keyring
from portal.services import directory, keystores
from portal.settings import settings


@identity_group.command("export")
@click.option("--as2-id", required=True)
@click.option("--environment", default=None, type=choice_of(Environment))
@click.option("--certificate", "fingerprint", default=None, help="SHA-256 fingerprint.")
@click.option(
    "--which",
    default=None,
    type=choice_of(keystores.Which),
    help="accept: every key needed for inbound traffic now, in one file.",
)
@click.option("--usage", default=None, type=choice_of(Usage), help="With --which (default: both).")
@click.option("--at", "at_text", default=None, help="ISO 8601 time with a zone (default: now).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pass-stdin", is_flag=True, help="Read the passphrase from stdin.")
@click.option("--legacy", is_flag=True, help="3DES and SHA-1 for old software (default AES-256).")
@click.option("--as", "as_email", default=None, help="Staff email to record as the actor.")
def identity_export_command(
    as2_id: str,
    environment: str | None,
    fingerprint: str | None,
    which: str | None,
    usage: str | None,
    at_text: str | None,
    out: Path,
    pass_stdin: bool,
    legacy: bool,
    as_email: str | None,
) -> None:
    """Write our key(s), certificate(s) and chain as PKCS#12, each under its alias."""
    if (fingerprint is None) == (which is None):
        raise click.UsageError("Give either --certificate or --which.")
    if usage is not None and which is None:
        raise click.UsageError("--usage goes with --which.")
    now = command_now()
    selection = keystores.Selection(
        at=cli_moment(at_text, now) if at_text else now,
        certificate=fingerprint,
        which=which,
        usage=usage,
    )
    passphrase = _passphrase(pass_stdin)
    descriptor = _create_private(out)
    try:
        with refusals():
            identity = directory.find_identity(db.session, as2_id, environment)
            exported = keystores.export(
                db.session,
                actor_as(as_email, Permission.EXPORT_KEYS),
                keyring(),
                identity,
                selection,
                passphrase=passphrase,
                legacy=legacy,
                overlap=settings().certificate_overlap,
            )
            _write_all(descriptor, exported.data)
    except BaseException:
        os.close(descriptor)
        out.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    aliases = [certificate_alias(as2_id, c.sha256) for c in exported.certificates]
    count = "1 key" if len(aliases) == 1 else f"{len(aliases)} keys"
    cipher = "legacy 3DES" if legacy else "AES-256"
    click.echo(f"Wrote {count} to {out} ({cipher}, mode 0600) under the aliases:")
    for alias in aliases:
        click.echo(alias)


def _passphrase(from_stdin: bool) -> str:
    """The passphrase: one line of stdin, or asked twice without echo."""
    if from_stdin:
        return read_stdin_secret("pass")
    value: str = click.prompt(
        "Passphrase for the file", hide_input=True, confirmation_prompt=True, err=True
    )
    return value


def _create_private(path: Path) -> int:
    """Create PATH readable by its owner only; refuse (exit 1) if it exists."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; choose another name or remove it.") from None
    except OSError as error:
        raise click.ClickException(f"Cannot create {path}: {error.strerror}.") from None
    os.fchmod(descriptor, 0o600)
    return descriptor


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
    os.fsync(descriptor)
