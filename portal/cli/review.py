"""`portal submissions list`, `portal submission approve|reject`, `portal config-export`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup, with_appcontext

from portal.cli.common import MULTILINE_TEXT, actor_as, choice_of, cli_moment, refusals
from portal.clock import command_now
from portal.domain.certs import colon_fingerprint
from portal.domain.roles import Permission
from portal.domain.vocab import Environment, SubmissionStatus, values_of
from portal.extensions import db
from portal.services import approvals, config_export, submissions
from portal.settings import settings

submissions_group = AppGroup("submissions", help="Certificates received from partners.")


@submissions_group.command("list")
@click.option("--status", default=SubmissionStatus.RECEIVED.value, show_default=True,
              type=choice_of(SubmissionStatus, "all"))  # fmt: skip
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
    now = command_now()
    moment = cli_moment(activate_at, now)
    with refusals():
        actor = actor_as(as_email, permission=Permission.APPROVE)
        submission = submissions.get_submission(db.session, submission_id)
        certificate = approvals.approve_submission(
            db.session, actor, submission, activate_at=moment, now=now,
            four_eyes_always=settings().four_eyes_always,
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
@click.option(
    "--reason",
    required=True,
    type=MULTILINE_TEXT,
    help="What the partner reads on their link page.",
)
@click.option("--as", "as_email", required=True, help="Staff email of the approver.")
def submission_reject_command(submission_id: int, reason: str, as_email: str) -> None:
    """Reject a received submission with a reason for the partner."""
    with refusals():
        actor = actor_as(as_email, permission=Permission.APPROVE)
        submission = submissions.get_submission(db.session, submission_id)
        approvals.reject_submission(db.session, actor, submission, reason=reason, now=command_now())
    click.echo(f"Rejected submission #{submission_id}.")


@click.command("config-export")
@click.option("--at", "at_text", default="now", help="ISO 8601 time with a zone (default now).")
@click.option("--identity", help="Only this identity (AS2 ID) and its partners.")
@click.option("--partner", help="Only this partner (AS2 ID) and its identity.")
@click.option("--environment", type=click.Choice(values_of(Environment)), help="Only this one.")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print one JSON document.")
@with_appcontext
def config_export_command(
    at_text: str, identity: str | None, partner: str | None, environment: str | None, as_json: bool
) -> None:
    """The certificates in force (the document GET /api/v1/config serves), as compact JSON."""
    del as_json  # JSON is the only format; the flag is part of the stable interface
    moment = cli_moment(at_text, command_now())
    selection = config_export.Selection(identity=identity, partner=partner, environment=environment)
    with refusals():
        document = config_export.build(
            db.session, at=moment, overlap=settings().certificate_overlap, selection=selection
        )
    click.echo(document.to_json())
