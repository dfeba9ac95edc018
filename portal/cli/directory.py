"""`portal identity ...` and `portal partner add`."""

from __future__ import annotations

from typing import BinaryIO

import click
from flask.cli import AppGroup

from portal.cli.common import (
    TEXT,
    actor_as,
    choice_of,
    cli_moment,
    read_limited,
    read_stdin_secret,
    refusals,
)
from portal.clock import command_now
from portal.domain.certs import colon_fingerprint
from portal.domain.languages import DEFAULT_LANGUAGE, LANGUAGES
from portal.domain.roles import Permission
from portal.domain.vocab import Environment, Usage, usage_words
from portal.extensions import db, keyring
from portal.services import certificates, directory, schedule
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError
from portal.settings import settings

identity_group = AppGroup("identity", help="Our AS2 identities.")


@identity_group.command("add")
@click.option("--name", required=True, type=TEXT)
@click.option("--as2-id", required=True)
@click.option(
    "--environment",
    default=Environment.PRODUCTION.value,
    show_default=True,
    type=choice_of(Environment),
)
@click.option(
    "--organisation", default="", type=TEXT, help="Organisation name (defaults to --name)."
)
@click.option("--email", "contact_email", default=None, help="Contact email.")
def identity_add_command(
    name: str, as2_id: str, environment: str, organisation: str, contact_email: str | None
) -> None:
    """Add an identity without a certificate yet."""
    with refusals():
        identity = directory.create_identity(
            db.session,
            Actor.command_line(),
            directory.IdentityData(name, as2_id, environment, organisation, contact_email),
        )
    click.echo(f"Created identity {identity.name} ({identity.as2_id}, {identity.environment}).")


partner_group = AppGroup("partner", help="Trading partners.")


@partner_group.command("add")
@click.option("--name", required=True, type=TEXT)
@click.option("--as2-id", required=True)
@click.option("--identity", "identity_as2_id", required=True, help="AS2 ID of our identity.")
@click.option("--email", "emails", required=True, multiple=True, help="Contact (repeatable).")
@click.option(
    "--timezone", default=None, help="Time zone (default: PORTAL_DEFAULT_TIMEZONE, UTC unless set)."
)
@click.option("--environment", default=None, type=choice_of(Environment))
@click.option(
    "--language",
    default=DEFAULT_LANGUAGE,
    show_default=True,
    type=click.Choice(list(LANGUAGES)),
    help="Language of the emails to the partner.",
)
def partner_add_command(
    name: str,
    as2_id: str,
    identity_as2_id: str,
    emails: tuple[str, ...],
    timezone: str | None,
    environment: str | None,
    language: str,
) -> None:
    """Add a trading partner of one of our identities."""
    zone = timezone or settings().default_timezone
    with refusals():
        identity = directory.find_identity(db.session, identity_as2_id, environment)
        partner = directory.create_partner(
            db.session,
            Actor.command_line(),
            directory.PartnerData(name, as2_id, identity.id, list(emails), zone, language),
        )
    click.echo(f"Created partner {partner.name} ({partner.as2_id}) of {identity.as2_id}.")


@identity_group.command("generate")
@click.option("--as2-id", required=True)
@click.option(
    "--name", default=None, type=TEXT, help="Name when the identity is created (default: AS2 ID)."
)
@click.option(
    "--environment",
    default=Environment.PRODUCTION.value,
    show_default=True,
    type=choice_of(Environment),
)
@click.option(
    "--organisation", default="", type=TEXT, help="O= of the subject when the identity is new."
)
@click.option(
    "--key-size", default=3072, show_default=True, type=click.Choice(["2048", "3072", "4096"])
)
@click.option("--days", default=730, show_default=True, type=click.IntRange(1, 3650))
@click.option("--usage", default=Usage.BOTH.value, show_default=True, type=choice_of(Usage))
def identity_generate_command(
    as2_id: str,
    name: str | None,
    environment: str,
    organisation: str,
    key_size: str,
    days: int,
    usage: str,
) -> None:
    """New key and self-signed certificate, not yet in force; creates the identity if missing."""
    actor = Actor.command_line()
    with refusals():
        try:
            identity = directory.find_identity(db.session, as2_id, environment)
        except NotFoundError:
            identity = directory.create_identity(
                db.session,
                actor,
                directory.IdentityData(name or as2_id, as2_id, environment, organisation),
            )
            click.echo(f"Created identity {identity.name} ({identity.as2_id}, {environment}).")
        certificate = certificates.generate(
            db.session,
            actor,
            keyring(),
            identity,
            usage=usage,
            key_size=int(key_size),
            days=days,
            now=command_now(),
        )
    click.echo(
        f"Generated a {key_size}-bit {usage_words(usage)} certificate for {as2_id}, valid until "
        f"{certificate.not_after:%Y-%m-%d %H:%M} UTC; not in force until scheduled."
    )
    click.echo(colon_fingerprint(certificate.sha256))


@identity_group.command("import")
@click.option("--as2-id", required=True)
@click.option("--environment", default=None, type=choice_of(Environment))
@click.option("--cert", "cert_file", type=click.File("rb"), help="PEM/DER certificate (+ chain).")
@click.option("--key", "key_file", type=click.File("rb"), help="PEM private key.")
@click.option("--key-pass-stdin", is_flag=True, help="Read the key's passphrase from stdin.")
@click.option("--p12", "p12_file", type=click.File("rb"), help="PKCS#12 (.p12/.pfx) file.")
@click.option("--pass-stdin", is_flag=True, help="Read the PKCS#12 passphrase from stdin.")
@click.option("--usage", default=Usage.BOTH.value, show_default=True, type=choice_of(Usage))
def identity_import_command(
    as2_id: str,
    environment: str | None,
    cert_file: BinaryIO | None,
    key_file: BinaryIO | None,
    key_pass_stdin: bool,
    p12_file: BinaryIO | None,
    pass_stdin: bool,
    usage: str,
) -> None:
    """Import a certificate with its private key (PEM pair or PKCS#12); not in force yet."""
    pem_pair = cert_file is not None or key_file is not None
    if pem_pair == (p12_file is not None):
        raise click.UsageError("Give either --cert and --key, or --p12.")
    if pem_pair and (cert_file is None or key_file is None):
        raise click.UsageError("--cert and --key go together.")
    if (key_pass_stdin and not pem_pair) or (pass_stdin and pem_pair):
        raise click.UsageError("--key-pass-stdin goes with --key; --pass-stdin with --p12.")
    actor, now = Actor.command_line(), command_now()
    with refusals():
        identity = directory.find_identity(db.session, as2_id, environment)
        if cert_file is not None and key_file is not None:
            passphrase = read_stdin_secret("key-pass").encode() if key_pass_stdin else None
            stored = certificates.import_pem(
                db.session,
                actor,
                keyring(),
                identity,
                cert_data=read_limited(cert_file),
                key_data=read_limited(key_file),
                passphrase=passphrase,
                usage=usage,
                now=now,
            )
        else:
            assert p12_file is not None  # noqa: S101  (checked above)
            stored = certificates.import_pkcs12(
                db.session,
                actor,
                keyring(),
                identity,
                data=read_limited(p12_file),
                passphrase=read_stdin_secret("pass").encode() if pass_stdin else b"",
                usage=usage,
                now=now,
            )
    for warning in stored.report.warnings:
        click.echo(f"Warning: {warning.message}", err=True)
    click.echo(
        f"Imported a {usage_words(usage)} certificate for {as2_id}; not in force until scheduled."
    )
    click.echo(colon_fingerprint(stored.certificate.sha256))


@identity_group.command("schedule")
@click.option("--as2-id", required=True)
@click.option("--environment", default=None, type=choice_of(Environment))
@click.option("--certificate", "fingerprint", required=True, help="SHA-256 fingerprint.")
@click.option("--activate-at", required=True, help="ISO 8601 time with a zone, or now.")
@click.option("--as", "as_email", default=None, help="Staff email acting (four eyes).")
def identity_schedule_command(
    as2_id: str,
    environment: str | None,
    fingerprint: str,
    activate_at: str,
    as_email: str | None,
) -> None:
    """Schedule our certificate: the first person proposes, a second approves (four eyes).

    Run it once as the proposer and once more, with the same time, as the approver.
    """
    now = command_now()
    moment = cli_moment(activate_at, now)
    with refusals():
        actor = actor_as(as_email)
        identity = directory.find_identity(db.session, as2_id, environment)
        certificate = certificates.find_identity_certificate(db.session, identity, fingerprint)
        waiting = certificate.proposed_activate_at
        approving = waiting is not None and certificate.proposed_by_id != actor.user_id
        # The same rights as on the web: operators propose, approvers approve.
        actor_as(as_email, Permission.APPROVE if approving else Permission.MANAGE_PARTNERS)
        if waiting is not None and approving:
            if abs((waiting - moment).total_seconds()) > 300 and activate_at.lower() != "now":
                raise ServiceError(
                    f"A different time ({waiting:%Y-%m-%dT%H:%M:%SZ}) waits for approval; "
                    "approve that time or cancel it first."
                )
            schedule.approve_identity_schedule(db.session, actor, certificate, now=now)
            done = f"Approved: takes effect at {certificate.activate_at:%Y-%m-%dT%H:%M:%SZ}."
        else:
            schedule.schedule_identity_certificate(
                db.session, actor, certificate, activate_at=moment, now=now
            )
            done = (
                f"Proposed {certificate.proposed_activate_at:%Y-%m-%dT%H:%M:%SZ}; "
                "a second person must approve it (run the same command with --as THEM)."
            )
    click.echo(done)
