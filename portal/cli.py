"""`portal ...` commands: thin wrappers over the services.

Exit codes: 0 done, 1 refused (one-line reason on stderr), 2 usage error (click's own).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy.exc import OperationalError

from portal.domain.roles import ROLES
from portal.extensions import db
from portal.models import ENVIRONMENTS
from portal.services import directory, users
from portal.services.actor import Actor
from portal.services.errors import ServiceError


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
