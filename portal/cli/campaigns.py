"""`portal campaign start`, `portal campaign request` and `portal campaign status`."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask.cli import AppGroup

from portal.cli.common import MULTILINE_TEXT, actor_as, cli_moment, refusals
from portal.clock import command_now
from portal.config import EMAIL_OFF
from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import campaign_board, campaign_requests, campaigns, directory
from portal.settings import settings

campaign_group = AppGroup(
    "campaign", help="Campaigns: reach many partners at once, track each one."
)


@campaign_group.command("start")
@click.option("--identity", "as2_id", required=True, help="AS2 ID of our identity.")
@click.option("--certificate", "fingerprint", required=True, help="SHA-256 of the new certificate.")
@click.option("--activate-at", required=True, help="ISO 8601 time with a zone: the switch.")
@click.option("--request-upload", is_flag=True, help="Ask each partner for its new certificate.")
@click.option(
    "--message",
    default=None,
    type=MULTILINE_TEXT,
    help="A note for the partners (text, shown as typed).",
)
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


@campaign_group.command("request")
@click.option("--identity", "as2_id", required=True, help="AS2 ID of our identity.")
@click.option(
    "--in-force-by", "due", required=True,
    help="ISO 8601 time with a zone: when the partners' new certificates should be in force.",
)  # fmt: skip
@click.option(
    "--expiring-before", default=None,
    help="ISO 8601 time: ask partners whose certificate in force expires before it (or who "
    "have none), unless a replacement is scheduled. Without it: every partner.",
)  # fmt: skip
@click.option(
    "--message",
    default=None,
    type=MULTILINE_TEXT,
    help="A note for the partners (text, shown as typed).",
)
@click.option("--dry-run", is_flag=True, help="List whom it would ask, and why; change nothing.")
@click.option("--as", "as_email", default=None, help="Staff email acting.")
def campaign_request_command(
    as2_id: str,
    due: str,
    expiring_before: str | None,
    message: str | None,
    dry_run: bool,
    as_email: str | None,
) -> None:
    """Ask partners for their new certificates: an upload link and an email to each."""
    now = command_now()
    with refusals():
        actor = actor_as(as_email, Permission.MANAGE_PARTNERS)
        wanted = campaign_requests.CertificateRequest(
            identity=directory.find_identity(db.session, as2_id),
            due_at=cli_moment(due, now),
            expiring_before=cli_moment(expiring_before, now) if expiring_before else None,
            message=message, max_uploads=settings().link_default_max_uploads,
        )  # fmt: skip
        overlap = settings().certificate_overlap
        if dry_run:
            chosen = campaign_requests.choose(db.session, wanted, now=now, overlap=overlap)
            for partner in chosen.partners:
                click.echo(f"{partner.as2_id:<24} {partner.name}: {chosen.reasons[partner.id]}")
            for line in chosen.left_out:
                click.echo(f"left out: {line}")
            click.echo(f"Would ask {len(chosen.partners)} partners; nothing was changed.")
            return
        started = campaign_requests.request_certificates(
            db.session, actor, wanted, now=now, overlap=overlap
        )
        board = campaign_board.board(db.session, started.campaign, now=now, risk_window=_risk())
    click.echo(
        f"Started campaign {started.campaign.id}: asked {started.partners} partners, "
        f"{started.partners - board.unreachable} emails queued, {board.unreachable} unreachable."
    )
    for line in started.left_out:
        click.echo(f"left out: {line}")
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
            "id": campaign.id, "kind": campaign.kind, "identity": campaign.identity.as2_id,
            "certificate": campaign.certificate.sha256 if campaign.certificate else None,
            "activate_at": campaign.activate_at.isoformat(), "counts": counts,
            "partners": partners,
        }  # fmt: skip
        click.echo(json.dumps(document, indent=2))
        return
    if campaign.certificate is not None:
        what = f"{campaign.identity.as2_id} to {campaign.certificate.sha256} at"
    else:
        what = f"partners of {campaign.identity.as2_id} asked for new certificates, in force by"
    click.echo(f"Campaign {campaign.id}: {what} {campaign.activate_at:%Y-%m-%dT%H:%M:%SZ}")
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
