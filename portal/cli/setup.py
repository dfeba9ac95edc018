"""`portal init`, `portal serve`, `portal user create`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from portal.cli.common import choice_of, read_stdin_secret, refusals, upgrade_schema
from portal.domain.roles import Role
from portal.extensions import db
from portal.services import users
from portal.services.actor import Actor
from portal.settings import settings


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
        email = settings().admin_email
        password = users.bootstrap_admin(db.session, email)
    if password is not None:
        click.echo(f"Created the first admin: {email}")
        click.echo(f"One-time password (shown only now, change it at first sign-in): {password}")
    click.echo(f"Serving the portal on http://{_url_host(host)}:{port}/ (Ctrl+C to stop)")
    click.echo(_links_line(settings().base_url, host, port))
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    waitress.serve(app, host=host, port=port, threads=threads, ident="portal")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _links_line(configured: str | None, host: str, port: int) -> str:
    """Which base URL links, emails and curl lines use, said at start-up."""
    if configured:
        return f"Links use {configured} (PORTAL_BASE_URL)."
    if host in ("0.0.0.0", "::", ""):  # noqa: S104  # nosec B104  # naming the wildcard, not binding it
        return (
            "Links use the address each visitor reached this portal on; set PORTAL_BASE_URL "
            "to the address partners should use."
        )
    return (
        f"Links use http://{_url_host(host)}:{port} (the address served; set PORTAL_BASE_URL "
        "to the address partners reach)."
    )


user_group = AppGroup("user", help="Staff accounts.")


@user_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=choice_of(Role))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--timezone", default=None, help="Time zone (default: PORTAL_DEFAULT_TIMEZONE, UTC unless set)."
)
def user_create_command(email: str, role: str, password_stdin: bool, timezone: str | None) -> None:
    """Create a staff account (prints a generated one-time password when none is given)."""
    password = read_stdin_secret("password") if password_stdin else None
    with refusals():
        user, generated = users.create_user(
            db.session,
            Actor.command_line(),
            email=email,
            role=role,
            password=password,
            timezone=timezone or settings().default_timezone,
        )
    click.echo(f"Created user {user.email} with role {user.role}.")
    if generated:
        click.echo(f"One-time password (change it at first sign-in): {generated}")
