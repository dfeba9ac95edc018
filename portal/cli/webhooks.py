"""`portal webhook add`, `portal webhook list` and `portal webhook remove`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from portal.cli.common import actor_as, read_stdin_secret, refusals
from portal.clock import command_now
from portal.domain.roles import Permission
from portal.extensions import db, keyring
from portal.models import WebhookEndpoint
from portal.services import webhooks
from portal.services.errors import ServiceError
from portal.settings import settings

webhook_group = AppGroup("webhook", help="Webhooks: signed JSON posted to URLs on events.")


@webhook_group.command("add")
@click.argument("url")
@click.option(
    "--events",
    "events",
    required=True,
    multiple=True,
    help=f"Events to send: {', '.join(webhooks.subscribable_events())} (comma-separated "
    "or repeated).",
)
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from standard input.")
@click.option("--as", "as_email", default=None, help="Admin email to record as the creator.")
def webhook_add_command(
    url: str, events: tuple[str, ...], secret_stdin: bool, as_email: str | None
) -> None:
    """Register a webhook; prints its id, then (when generated) its secret once, last."""
    try:
        wanted = webhooks.parse_events(part for value in events for part in value.split(","))
    except ServiceError as error:
        raise click.BadParameter(error.message, param_hint="--events") from None
    secret = read_stdin_secret("secret") if secret_stdin else None
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_WEBHOOKS)
        made = webhooks.create(
            db.session, actor, keyring(), url, wanted, secret=secret, now=command_now(),
            allow_private=settings().webhook_allow_private,
        )  # fmt: skip
    click.echo(f"Registered webhook {made.endpoint.id} for {', '.join(made.endpoint.events)}.")
    if secret is None:
        click.echo("Its signing secret is shown only now; give it to the receiver.")
        click.echo(made.secret)


def _row(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "state": "active" if webhooks.is_active(endpoint) else "removed",
        "created_at": endpoint.created_at.isoformat(),
        "created_by": endpoint.created_by.email if endpoint.created_by else None,
        "removed_at": endpoint.removed_at.isoformat() if endpoint.removed_at else None,
    }


@webhook_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def webhook_list_command(as_json: bool) -> None:
    """List webhooks (never their secrets)."""
    with refusals():
        endpoints = webhooks.list_endpoints(db.session, page=1, per_page=10_000).items
    if as_json:
        click.echo(json.dumps({"webhooks": [_row(e) for e in endpoints]}, indent=2))
        return
    if not endpoints:
        click.echo("No webhooks.")
    for endpoint in endpoints:
        state = "active" if webhooks.is_active(endpoint) else "removed"
        click.echo(f"{endpoint.id:<5} {state:<8} {endpoint.url}  {','.join(endpoint.events)}")


@webhook_group.command("remove")
@click.argument("endpoint_id", metavar="ID", type=int)
@click.option("--as", "as_email", default=None, help="Admin email to record as the actor.")
def webhook_remove_command(endpoint_id: int, as_email: str | None) -> None:
    """Stop sending to a webhook (its delivery log stays)."""
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_WEBHOOKS)
        endpoint = webhooks.remove(db.session, actor, endpoint_id, now=command_now())
    click.echo(f"Removed webhook {endpoint.id} ({endpoint.url}).")
