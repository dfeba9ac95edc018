"""`portal token create`, `portal token list` and `portal token revoke`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from portal.cli.common import actor_as, refusals
from portal.clock import command_now
from portal.domain.roles import Permission
from portal.domain.scopes import Scope
from portal.domain.vocab import values_of
from portal.extensions import db
from portal.services import api_tokens
from portal.services.errors import ServiceError

token_group = AppGroup("token", help="API tokens for programs calling the portal.")


@token_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    help=f"What the token may do: {', '.join(values_of(Scope))} (comma-separated or repeated).",
)
@click.option("--as", "as_email", default=None, help="Admin email to record as the creator.")
def token_create_command(name: str, scopes: tuple[str, ...], as_email: str | None) -> None:
    """Create an API token; prints its secret once, as the last line."""
    try:
        wanted = api_tokens.parse_scopes(part for value in scopes for part in value.split(","))
    except ServiceError as error:
        raise click.BadParameter(error.message, param_hint="--scope") from None
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_TOKENS)
        made = api_tokens.create(db.session, actor, name, wanted, now=command_now())
    click.echo(f"Created API token {made.token.name} ({', '.join(made.token.scopes)}).")
    click.echo("It is shown only now; store it where the program that uses it reads it.")
    click.echo(made.secret)


@token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def token_list_command(as_json: bool) -> None:
    """List API tokens (never their secrets)."""
    with refusals():
        page = api_tokens.list_tokens(db.session, page=1, per_page=10_000)
    rows = [
        {
            "name": t.name,
            "scopes": list(t.scopes),
            "state": "active" if api_tokens.is_active(t) else "revoked",
            "created_at": t.created_at.isoformat(),
            "created_by": t.created_by.email if t.created_by else None,
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in page.items
    ]
    if as_json:
        click.echo(json.dumps({"tokens": rows}, indent=2))
        return
    if not rows:
        click.echo("No API tokens.")
    for row in rows:
        click.echo(
            f"{row['name']:<24} {row['state']:<8} {','.join(row['scopes']):<24} "
            f"last used {row['last_used_at'] or 'never'}"
        )


@token_group.command("revoke")
@click.argument("name")
@click.option("--as", "as_email", default=None, help="Admin email to record as the actor.")
def token_revoke_command(name: str, as_email: str | None) -> None:
    """Stop an API token from working."""
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_TOKENS)
        token = api_tokens.revoke(db.session, actor, name, now=command_now())
    click.echo(f"Revoked API token {token.name}.")
