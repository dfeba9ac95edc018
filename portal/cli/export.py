"""`portal export --dir PATH [--at ISO8601]`: the export directory for AS2 engines."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from portal import exporter
from portal.cli.common import cli_moment, refusals
from portal.clock import command_now
from portal.extensions import db, keyring
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.settings import settings


@click.command("export")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="The export directory, a symbolic link the portal manages (default PORTAL_EXPORT_DIR).",
)
@click.option("--at", "at_text", default="now", help="ISO 8601 time with a zone (default now).")
@with_appcontext
def export_command(directory: Path | None, at_text: str) -> None:
    """Write the certificates in force (and keys, with PORTAL_EXPORT_KEY_PASSPHRASE) to --dir."""
    moment = cli_moment(at_text, command_now())
    configured = settings()
    if directory is None:
        if configured.export_dir is None:
            raise click.UsageError("Give --dir PATH, or set PORTAL_EXPORT_DIR.")
        directory = Path(configured.export_dir)
    with refusals():
        try:
            outcome = exporter.refresh(
                db.session,
                keyring(),
                directory,
                at=moment,
                overlap=configured.certificate_overlap,
                passphrase=configured.export_key_passphrase,
                actor=Actor.command_line(),
            )
        except OSError as error:  # the file system refused: nothing was switched
            raise ServiceError(f"Export not written: {exporter.failure_text(error)}") from None
    click.echo(export_line(outcome))


def export_line(outcome: exporter.Outcome) -> str:
    """One line saying what an export did."""
    version = outcome.version[:16]
    if not outcome.written:
        return f"Export directory {outcome.path}: unchanged (version {version})."
    keys = f", {outcome.keys} of them keys" if outcome.keys else ""
    return (
        f"Export directory {outcome.path}: wrote version {version} ({outcome.files} files{keys})."
    )
