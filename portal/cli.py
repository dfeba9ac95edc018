"""`portal ...` commands: thin wrappers over the services.

Exit codes: 0 done, 1 refused (one-line reason on stderr), 2 usage error (click's own).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, BinaryIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy.exc import OperationalError

from portal.domain.certs import MAX_INPUT_BYTES, Usage
from portal.domain.certs import inspect as inspect_certificate
from portal.domain.roles import ROLES, Permission, role_allows
from portal.domain.tokens import parse_duration
from portal.extensions import db, keyring, link_signer
from portal.models import ENVIRONMENTS, SUBMISSION_STATUSES, USAGES
from portal.services import (
    audit,
    certificates,
    config_export,
    directory,
    links,
    runner,
    schedule,
    submissions,
    users,
)
from portal.services.actor import Actor
from portal.services.certificates import colon_fingerprint
from portal.services.errors import NotFoundError, ServiceError
from portal.timeutil import parse_moment, utcnow

# Findings that mean "this is not a certificate file at all" (exit 2, not 1).
UNREADABLE_CODES = {"unreadable", "too_large"}


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a service refusal into exit 1 with its message; commit only on success."""
    try:
        yield
    except ServiceError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except OperationalError as error:
        db.session.rollback()
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"The database did not answer: {reason}") from None
    db.session.commit()


def upgrade_schema() -> tuple[str | None, str | None]:
    """Bring the configured database to the newest schema."""
    from portal.migrate import upgrade

    return upgrade(db.engine)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    with refusals():
        before, after = upgrade_schema()
    if before == after:
        click.echo(f"Database schema is up to date ({after}).")
    else:
        click.echo(f"Database schema upgraded from {before or 'empty'} to {after}.")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Run the portal; the first run creates the database and a first admin."""
    import waitress

    with refusals():
        upgrade_schema()
        email = current_app.config["ADMIN_EMAIL"]
        password = users.bootstrap_admin(db.session, email)
    if password is not None:
        click.echo(f"Created the first admin: {email}")
        click.echo(f"One-time password (shown only now, change it at first sign-in): {password}")
    click.echo(f"Serving the portal on http://{host}:{port}/ (Ctrl+C to stop)")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    waitress.serve(app, host=host, port=port, threads=threads, ident="portal")


user_group = AppGroup("user", help="Staff accounts.")


@user_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--timezone", default="UTC", show_default=True)
def user_create_command(email: str, role: str, password_stdin: bool, timezone: str) -> None:
    """Create a staff account (prints a generated one-time password when none is given)."""
    password = _read_stdin_secret("password") if password_stdin else None
    with refusals():
        user, generated = users.create_user(
            db.session,
            Actor.command_line(),
            email=email,
            role=role,
            password=password,
            timezone=timezone,
        )
    click.echo(f"Created user {user.email} with role {user.role}.")
    if generated:
        click.echo(f"One-time password (change it at first sign-in): {generated}")


identity_group = AppGroup("identity", help="Our AS2 identities.")


@identity_group.command("add")
@click.option("--name", required=True)
@click.option("--as2-id", required=True)
@click.option(
    "--environment", default="production", show_default=True, type=click.Choice(ENVIRONMENTS)
)
@click.option("--organisation", default="", help="Organisation name (defaults to --name).")
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
@click.option("--name", required=True)
@click.option("--as2-id", required=True)
@click.option("--identity", "identity_as2_id", required=True, help="AS2 ID of our identity.")
@click.option("--email", "emails", required=True, multiple=True, help="Contact (repeatable).")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--environment", default=None, type=click.Choice(ENVIRONMENTS))
def partner_add_command(
    name: str,
    as2_id: str,
    identity_as2_id: str,
    emails: tuple[str, ...],
    timezone: str,
    environment: str | None,
) -> None:
    """Add a trading partner of one of our identities."""
    with refusals():
        identity = directory.find_identity(db.session, identity_as2_id, environment)
        partner = directory.create_partner(
            db.session,
            Actor.command_line(),
            directory.PartnerData(name, as2_id, identity.id, list(emails), timezone),
        )
    click.echo(f"Created partner {partner.name} ({partner.as2_id}) of {identity.as2_id}.")


@identity_group.command("generate")
@click.option("--as2-id", required=True)
@click.option("--name", default=None, help="Name when the identity is created (default: AS2 ID).")
@click.option(
    "--environment", default="production", show_default=True, type=click.Choice(ENVIRONMENTS)
)
@click.option("--organisation", default="", help="O= of the subject when the identity is new.")
@click.option(
    "--key-size", default=3072, show_default=True, type=click.Choice(["2048", "3072", "4096"])
)
@click.option("--days", default=730, show_default=True, type=click.IntRange(1, 3650))
@click.option("--usage", default="both", show_default=True, type=click.Choice(USAGES))
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
            now=utcnow(),
        )
    click.echo(
        f"Generated a {key_size}-bit {usage} certificate for {as2_id}, valid until "
        f"{certificate.not_after:%Y-%m-%d %H:%M} UTC; not in force until scheduled."
    )
    click.echo(colon_fingerprint(certificate.sha256))


@identity_group.command("import")
@click.option("--as2-id", required=True)
@click.option("--environment", default=None, type=click.Choice(ENVIRONMENTS))
@click.option("--cert", "cert_file", type=click.File("rb"), help="PEM/DER certificate (+ chain).")
@click.option("--key", "key_file", type=click.File("rb"), help="PEM private key.")
@click.option("--key-pass-stdin", is_flag=True, help="Read the key's passphrase from stdin.")
@click.option("--p12", "p12_file", type=click.File("rb"), help="PKCS#12 (.p12/.pfx) file.")
@click.option("--pass-stdin", is_flag=True, help="Read the PKCS#12 passphrase from stdin.")
@click.option("--usage", default="both", show_default=True, type=click.Choice(USAGES))
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
    actor, now = Actor.command_line(), utcnow()
    with refusals():
        identity = directory.find_identity(db.session, as2_id, environment)
        if cert_file is not None and key_file is not None:
            passphrase = _read_stdin_secret("key-pass").encode() if key_pass_stdin else None
            stored = certificates.import_pem(
                db.session,
                actor,
                keyring(),
                identity,
                cert_data=_read_limited(cert_file),
                key_data=_read_limited(key_file),
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
                data=_read_limited(p12_file),
                passphrase=_read_stdin_secret("pass").encode() if pass_stdin else b"",
                usage=usage,
                now=now,
            )
    for warning in stored.report.warnings:
        click.echo(f"Warning: {warning.message}", err=True)
    click.echo(f"Imported a {usage} certificate for {as2_id}; not in force until scheduled.")
    click.echo(colon_fingerprint(stored.certificate.sha256))


cert_group = AppGroup("cert", help="Certificate files.")


@cert_group.command("inspect")
@click.argument("file", type=click.File("rb"))
@click.option("--usage", default="both", show_default=True, type=click.Choice(USAGES))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def cert_inspect_command(file: BinaryIO, usage: str, as_json: bool) -> None:
    """Check a certificate file as a partner upload would be checked.

    Exit 0 acceptable, 1 rejected, 2 unreadable (not a certificate file at all) or misuse.
    """
    data = file.read(MAX_INPUT_BYTES + 1)
    report = inspect_certificate(data, usage=Usage(usage), now=utcnow())
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
        audit.record(
            db.session,
            Actor.command_line(),
            "keys.rotated",
            object_type="keyring",
            object_id=ring.newest_key_id,
            summary=f"Re-encrypted {rotated} of {total} private keys "
            f"under key {ring.newest_key_id}",
            details={"rotated": rotated, "total": total},
        )
    click.echo(
        f"Re-encrypted {rotated} of {total} stored private keys under key {ring.newest_key_id}."
    )


link_group = AppGroup("link", help="Share links for partners.")


@link_group.command("create")
@click.option("--partner", "partner_as2_id", required=True, help="AS2 ID of the partner.")
@click.option("--environment", default=None, type=click.Choice(ENVIRONMENTS))
@click.option(
    "--purpose",
    "purposes",
    default="download,upload",
    show_default=True,
    help="download, upload or both, comma-separated.",
)
@click.option("--expires", default=None, help="Lifetime: a number and s, m, h or d (default 14d).")
@click.option("--max-uploads", default=None, type=click.IntRange(0, 20))
@click.option("--as", "as_email", default=None, help="Staff email to record as the creator.")
def link_create_command(
    partner_as2_id: str,
    environment: str | None,
    purposes: str,
    expires: str | None,
    max_uploads: int | None,
    as_email: str | None,
) -> None:
    """Create a share link; prints the link's id, then its URL as the last line."""
    wanted = {part.strip() for part in purposes.split(",") if part.strip()}
    if not wanted or wanted - {"download", "upload"}:
        raise click.BadParameter("use download, upload or download,upload", param_hint="--purpose")
    try:
        lifetime = parse_duration(expires or current_app.config["LINK_DEFAULT_EXPIRY"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--expires") from None
    uploads = (
        max_uploads if max_uploads is not None else current_app.config["LINK_DEFAULT_MAX_UPLOADS"]
    )
    with refusals():
        actor = _actor_as(as_email, Permission.MANAGE_PARTNERS)
        partner = directory.find_partner(db.session, partner_as2_id, environment)
        link, token = links.create_link(
            db.session,
            actor,
            link_signer(),
            partner,
            can_download="download" in wanted,
            can_upload="upload" in wanted,
            lifetime=lifetime,
            max_uploads=uploads if "upload" in wanted else 0,
            now=utcnow(),
        )
    click.echo(link.id)
    click.echo(links.link_url(current_app.config["BASE_URL"], token))


@link_group.command("revoke")
@click.argument("link_id")
@click.option("--as", "as_email", default=None, help="Staff email to record as the actor.")
def link_revoke_command(link_id: str, as_email: str | None) -> None:
    """Stop a share link from working."""
    with refusals():
        actor = _actor_as(as_email, Permission.MANAGE_PARTNERS)
        link = links.get_link(db.session, link_id)
        links.revoke(db.session, actor, link, utcnow())
    click.echo(f"Revoked link {link_id}.")


@identity_group.command("schedule")
@click.option("--as2-id", required=True)
@click.option("--environment", default=None, type=click.Choice(ENVIRONMENTS))
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
    now = utcnow()
    moment = _moment(activate_at, now)
    with refusals():
        actor = _actor_as(as_email)
        identity = directory.find_identity(db.session, as2_id, environment)
        certificate = certificates.find_identity_certificate(db.session, identity, fingerprint)
        waiting = certificate.proposed_activate_at
        approving = waiting is not None and certificate.proposed_by_id != actor.user_id
        # The same rights as on the web: operators propose, approvers approve.
        _actor_as(as_email, Permission.APPROVE if approving else Permission.MANAGE_PARTNERS)
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


submissions_group = AppGroup("submissions", help="Certificates received from partners.")


@submissions_group.command("list")
@click.option("--status", default="received", show_default=True,
              type=click.Choice([*SUBMISSION_STATUSES, "all"]))  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def submissions_list_command(status: str, as_json: bool) -> None:
    """List submissions (newest first)."""
    with refusals():
        page = submissions.list_submissions(
            db.session, status=None if status == "all" else status, page=1, per_page=10_000
        )
    rows = [
        {
            "id": s.id,
            "partner": s.partner.as2_id,
            "partner_name": s.partner.name,
            "usage": s.usage,
            "status": s.status,
            "fingerprint_sha256": colon_fingerprint(s.sha256),
            "received_at": s.created_at.isoformat(),
            "proposed_window_start": (
                s.proposed_window_start.isoformat() if s.proposed_window_start else None
            ),
            "rejection_reason": s.rejection_reason,
        }
        for s in page.items
    ]
    if as_json:
        click.echo(json.dumps({"submissions": rows}, indent=2))
        return
    if not rows:
        click.echo(f"No {'' if status == 'all' else status + ' '}submissions.")
    for row in rows:
        click.echo(
            f"#{row['id']:<5} {row['status']:<9} {row['partner']:<20} {row['usage']:<10} "
            f"{row['fingerprint_sha256']}"
        )


submission_group = AppGroup("submission", help="Review one submission.")


@submission_group.command("approve")
@click.argument("submission_id", type=int)
@click.option("--activate-at", required=True, help="ISO 8601 time with a zone, or now.")
@click.option("--as", "as_email", required=True, help="Staff email of the approver.")
def submission_approve_command(submission_id: int, activate_at: str, as_email: str) -> None:
    """Approve a received submission; the certificate is in force from --activate-at."""
    now = utcnow()
    moment = _moment(activate_at, now)
    with refusals():
        actor = _actor_as(as_email, permission=Permission.APPROVE)
        submission = submissions.get_submission(db.session, submission_id)
        certificate = schedule.approve_submission(
            db.session, actor, submission, activate_at=moment, now=now,
            four_eyes_always=bool(current_app.config["FOUR_EYES_ALWAYS"]),
        )  # fmt: skip
    if certificate is None:
        click.echo(
            f"First approval of submission #{submission_id} recorded; a second approver must "
            "confirm it (the same command, --as THEM)."
        )
        return
    click.echo(
        f"Approved submission #{submission_id}: in force from "
        f"{certificate.activate_at:%Y-%m-%dT%H:%M:%SZ}."
    )


@submission_group.command("reject")
@click.argument("submission_id", type=int)
@click.option("--reason", required=True, help="What the partner reads on their link page.")
@click.option("--as", "as_email", required=True, help="Staff email of the approver.")
def submission_reject_command(submission_id: int, reason: str, as_email: str) -> None:
    """Reject a received submission with a reason for the partner."""
    with refusals():
        actor = _actor_as(as_email, permission=Permission.APPROVE)
        submission = submissions.get_submission(db.session, submission_id)
        schedule.reject_submission(db.session, actor, submission, reason=reason, now=utcnow())
    click.echo(f"Rejected submission #{submission_id}.")


@click.command("config-export")
@click.option("--at", "at_text", default="now", help="ISO 8601 time with a zone (default now).")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print one JSON document.")
@with_appcontext
def config_export_command(at_text: str, as_json: bool) -> None:
    """The certificates in force (the document GET /api/v1/config serves)."""
    del as_json  # JSON is the only format; the flag is part of the stable interface
    moment = _moment(at_text, utcnow())
    with refusals():
        document = config_export.config_document(db.session, at=moment, overlap=_overlap_setting())
    click.echo(json.dumps(document, indent=2))


@click.command("run-due")
@with_appcontext
def run_due_command() -> None:
    """Perform, once, every side effect whose time has come (safe to run anywhere, any time)."""
    result = _run_once()
    click.echo(
        f"Planned {result.planned}, performed {result.performed}, failed {result.failed} "
        f"side effects; sent {result.sent} emails, {result.unsent} could not be sent."
    )
    if result.failed or result.unsent:
        sys.exit(1)


@click.command("scheduler")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(1, 86_400))
@click.option(
    "--iterations", default=0, type=click.IntRange(0), help="Stop after N runs (0: never)."
)
@with_appcontext
def scheduler_command(interval: int, iterations: int) -> None:
    """Run run-due every --interval seconds until stopped (Ctrl+C or SIGTERM)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    count = 0
    while not stop.is_set():
        try:
            result = _run_once()
        except OperationalError as error:
            # A database restart must not end the loop; the next tick retries.
            click.echo(f"run-due failed, retrying in {interval}s: {type(error).__name__}", err=True)
        else:
            if result.planned or result.performed or result.failed or result.sent:
                click.echo(
                    f"{utcnow():%Y-%m-%dT%H:%M:%SZ} planned {result.planned}, "
                    f"performed {result.performed}, failed {result.failed}, "
                    f"sent {result.sent}, unsent {result.unsent}"
                )
        count += 1
        if iterations and count >= iterations:
            break
        stop.wait(interval)


def _run_once() -> runner.RunResult:
    """Perform due side effects, then send what the outbox holds."""
    import os
    import socket

    from portal.services.mailer import Mailer, SmtpSettings

    name = f"{socket.gethostname()}:{os.getpid()}"
    mailer = Mailer(SmtpSettings.from_config(current_app.config))
    base_url = current_app.config["BASE_URL"]
    try:
        result = runner.run_due(db.session, now=utcnow(), runner=name)
        sent, failed = runner.deliver_outbox(
            db.session,
            mailer.send,
            lambda link_id: links.link_url(base_url, link_signer().sign(link_id)),
            now=utcnow(),
        )
        return runner.RunResult(
            result.planned, result.performed, result.failed, sent=sent, unsent=failed
        )
    finally:
        db.session.rollback()


def _overlap_setting() -> timedelta:
    return timedelta(days=int(current_app.config["CERTIFICATE_OVERLAP_DAYS"]))


def _moment(text: str, now: datetime) -> datetime:
    try:
        return parse_moment(text, now)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _actor_as(email: str | None, permission: Permission | None = None) -> Actor:
    """The command-line actor, on behalf of the staff user EMAIL when given."""
    if email is None:
        return Actor.command_line()
    user = users.find_by_email(db.session, email)
    if user is None or not user.is_enabled:
        raise ServiceError(f"No enabled user {email}.")
    if permission is not None and not role_allows(user.role, permission):
        raise ServiceError(f"{user.email} is {user.role}; that role may not do this.")
    return Actor.command_line(user)


def _read_limited(file: BinaryIO) -> bytes:
    data = file.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ServiceError(f"{file.name} is larger than {MAX_INPUT_BYTES // 1024} KiB.")
    return data


def _read_stdin_secret(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.UsageError(f"--{what}-stdin given but standard input was empty.")
    return value


COMMANDS: list[click.Command] = [
    init_command,
    serve_command,
    user_group,
    identity_group,
    partner_group,
    cert_group,
    keys_group,
    link_group,
    submissions_group,
    submission_group,
    config_export_command,
    run_due_command,
    scheduler_command,
]


def register_commands(app: Flask) -> None:
    """Make every command available as `flask --app portal ...` and `portal ...`."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app_for_cli() -> Flask:
    from portal import create_app

    return create_app()


main: Callable[..., Any] = FlaskGroup(
    name="portal",
    help="Certificate Exchange Portal.",
    create_app=_create_app_for_cli,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
