"""`portal link create` and `portal link revoke`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import actor_as, choice_of, command_base_url, refusals
from portal.clock import command_now
from portal.domain.roles import Permission
from portal.domain.tokens import parse_duration
from portal.domain.vocab import Environment
from portal.extensions import db, link_signer
from portal.services import directory, links
from portal.settings import settings

link_group = AppGroup("link", help="Share links for partners.")


@link_group.command("create")
@click.option("--partner", "partner_as2_id", required=True, help="AS2 ID of the partner.")
@click.option("--environment", default=None, type=choice_of(Environment))
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
        lifetime = parse_duration(expires or settings().link_default_expiry)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--expires") from None
    uploads = max_uploads if max_uploads is not None else settings().link_default_max_uploads
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_PARTNERS)
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
            now=command_now(),
        )
    click.echo(link.id)
    click.echo(links.link_url(command_base_url(), token))


@link_group.command("revoke")
@click.argument("link_id")
@click.option("--as", "as_email", default=None, help="Staff email to record as the actor.")
def link_revoke_command(link_id: str, as_email: str | None) -> None:
    """Stop a share link from working."""
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_PARTNERS)
        link = links.get_link(db.session, link_id)
        links.revoke(db.session, actor, link, command_now())
    click.echo(f"Revoked link {link_id}.")
