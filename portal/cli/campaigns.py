"""`portal campaign start` and `portal campaign status`."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask.cli import AppGroup

from portal.cli.common import actor_as, cli_moment, refusals
from portal.clock import command_now
from portal.config import EMAIL_OFF
from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import campaign_board, campaigns, directory
from portal.settings import settings

campaign_group = AppGroup("campaign", help="Rotation campaigns: reach every partner, track each.")


@campaign_group.command("start")
@click.option("--identity", "as2_id", required=True, help="AS2 ID of our identity.")
@click.option("--certificate", "fingerprint", required=True, help="SHA-256 of the new certificate.")
@click.option("--activate-at", required=True, help="ISO 8601 time with a zone: the switch.")
@click.option("--request-upload", is_flag=True, help="Ask each partner for its new certificate.")
@click.option("--message", default=None, help="A note for the partners (text, shown as typed).")
@click.option("--as", "as_email", default=None, help="Staff email acting (the proposer).")
def campaign_start_command(
    as2_id: str,
    fingerprint: str,
    activate_at: str,
    request_upload: bool,
    message: str | None,
    as_email: str | None,
) -> None:
    """Start a campaign: a link and an email per partner; our certificate proposed for then."""
    now = command_now()
    moment = cli_moment(activate_at, now)
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_PARTNERS)
        identity = directory.find_identity(db.session, as2_id)
        wanted = campaigns.StartRequest(
            identity=identity, sha256=fingerprint, activate_at=moment,
            request_upload=request_upload, message=message,
            max_uploads=settings().link_default_max_uploads,
        )  # fmt: skip
        campaign = campaigns.start(db.session, actor, wanted, now=now)
        board = campaign_board.board(db.session, campaign, now=now, risk_window=_risk())
    click.echo(
        f"Started campaign {campaign.id}: {len(board.rows)} partners, "
        f"{len(board.rows) - board.unreachable} emails queued, {board.unreachable} unreachable."
    )
    click.echo(
        f"Our certificate is proposed for {campaign.activate_at:%Y-%m-%dT%H:%M:%SZ}; "
        "a second person must approve the schedule."
    )
    if not settings().email_is_on:
        click.echo(f"{EMAIL_OFF}: the emails wait in the outbox until it is set.")


@campaign_group.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def campaign_status_command(campaign_id: int, as_json: bool) -> None:
    """The board: counts per state and each partner's state."""
    with refusals():
        campaign = campaigns.get_campaign(db.session, campaign_id)
        board = campaign_board.board(db.session, campaign, now=command_now(), risk_window=_risk())
    counts = {state.value: n for state, n in board.counts.items()}
    partners = [
        {"as2_id": row.as2_id, "name": row.name, "state": row.state.value,
         "unreachable": row.unreachable, "at_risk": row.at_risk}
        for row in board.rows
    ]  # fmt: skip
    if as_json:
        document = {
            "id": campaign.id, "identity": campaign.identity.as2_id,
            "certificate": campaign.certificate.sha256,
            "activate_at": campaign.activate_at.isoformat(), "counts": counts,
            "partners": partners,
        }  # fmt: skip
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(
        f"Campaign {campaign.id}: {campaign.identity.as2_id} to {campaign.certificate.sha256} "
        f"at {campaign.activate_at:%Y-%m-%dT%H:%M:%SZ}"
    )
    click.echo(
        "  ".join(f"{state}: {n}" for state, n in counts.items())
        + f"  at risk: {board.at_risk}  unreachable: {board.unreachable}"
    )
    for row in partners:
        flags = [flag for flag in ("unreachable", "at_risk") if row[flag]]
        click.echo(
            f"{row['as2_id']:<24} {row['state']:<13} {row['name']}"
            + (f"  ({', '.join(flags).replace('_', ' ')})" if flags else "")
        )


def _risk() -> timedelta:
    return settings().campaign_at_risk
