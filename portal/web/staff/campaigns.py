"""Campaigns: the list, starting one (a rotation or a request for partners' certificates), the
per-partner board, its CSV, resend and revoke (one partner, or every partner at risk)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time

from flask import Response, abort, flash, redirect, render_template, request, url_for

from portal.clock import request_now
from portal.domain.campaigns import states_of
from portal.domain.roles import Permission
from portal.extensions import db
from portal.models import Campaign
from portal.services import audit, campaign_board, campaign_requests, campaigns, directory
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.timeutil import is_valid_timezone, local_to_utc
from portal.web.access import current_actor, requires
from portal.web.forms import attach_error, page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import CampaignForm, CertificateRequestForm, ConfirmForm
from portal.web.staff.pages import Rendered

# Besides the states, the board filters these.
FLAGS = ("at risk", "unreachable")
CSV_FIELDS = ("as2_id", "name", "state", "at_risk", "unreachable", "link_id", "link_revoked",
              "opened", "downloaded", "acknowledged_at", "upload", "email_sent_at")  # fmt: skip


@bp.get("/campaigns")
@requires(Permission.VIEW)
def campaigns_list() -> Rendered:
    """Every campaign, newest first; operators start one here."""
    return _list_page(_start_form(), _request_form())


@bp.post("/campaigns")
@requires(Permission.MANAGE_PARTNERS)
def campaign_start() -> Rendered:
    """Start a campaign; a refusal is the form again, with its field marked (422)."""
    form = _start_form()
    if form.validate_on_submit():
        moment = _switch_moment(form)
        if moment is not None:
            try:
                campaign = campaigns.start(
                    db.session, current_actor(), _start_request(form, moment), now=request_now()
                )
            except ServiceError as error:
                field = {"activate_at": "date"}.get(error.field or "", error.field)
                attach_error(form, ServiceError(error.message, field=field))
            else:
                flash(
                    f"Campaign {campaign.id} started. Our certificate is proposed for the switch; "
                    "a second person approves the schedule.",
                    "success",
                )
                return redirect(url_for("staff.campaign_view", campaign_id=campaign.id))
    return _list_page(form, _request_form(), status=422)


@bp.post("/campaigns/requests")
@requires(Permission.MANAGE_PARTNERS)
def campaign_request_start() -> Rendered:
    """Ask partners for new certificates; a refusal is the form again, field marked (422)."""
    form = _request_form()
    if form.validate_on_submit():
        moment = _switch_moment(form)
        if moment is not None:
            try:
                started = campaign_requests.request_certificates(
                    db.session, current_actor(), _certificate_request(form, moment),
                    now=request_now(), overlap=settings().certificate_overlap,
                )  # fmt: skip
            except ServiceError as error:
                attach_error(form, error)
            else:
                flash(
                    f"Campaign {started.campaign.id} started: {started.partners} partners asked "
                    "for their new certificates.",
                    "success",
                )
                if started.left_out:
                    flash(_left_out(started.left_out), "warning")
                return redirect(url_for("staff.campaign_view", campaign_id=started.campaign.id))
    return _list_page(_start_form(), form, status=422)


@bp.get("/campaigns/<id:campaign_id>")
@requires(Permission.VIEW)
def campaign_view(campaign_id: int) -> Rendered:
    """The board: counts, the partners in the chosen state or matching the search, paged."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    state, query = _filters(campaign)
    board = campaign_board.board(
        db.session, campaign, now=request_now(), risk_window=settings().campaign_at_risk
    )
    rows = campaign_board.filter_rows(board.rows, state=state, query=query)
    page = campaign_board.page_of(
        rows, page=page_arg(request.args.get("page")), per_page=settings().page_size
    )
    return render_template(
        "staff/campaign.html", campaign=campaign, board=board, page=page, state=state, q=query,
        filters=(*states_of(campaign.asks), *FLAGS), confirm_form=ConfirmForm(),
        at_risk_days=settings().campaign_at_risk.days,
    )  # fmt: skip


@bp.get("/campaigns/<id:campaign_id>/board.csv")
@requires(Permission.VIEW)
def campaign_csv(campaign_id: int) -> Response:
    """The board (as filtered) as CSV, one partner a line."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    state, query = _filters(campaign)
    board = campaign_board.board(
        db.session, campaign, now=request_now(), risk_window=settings().campaign_at_risk
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    shown = list(campaign_board.filter_rows(board.rows, state=state, query=query))
    for row in shown:
        writer.writerow(
            _cell(value)
            for value in (
                row.as2_id, row.name, row.state.value, row.at_risk, row.unreachable,
                row.link_id or "", row.link_revoked, row.facts.opened, row.facts.downloaded,
                _iso(row.facts.acknowledged_at), row.facts.submission_status or "",
                _iso(row.email_sent_at),
            )
        )  # fmt: skip
    audit.record(
        db.session, current_actor(), "campaign.exported", object_type="campaign",
        object_id=campaign.id, details={"partners": len(shown), "state": state, "q": query},
        summary=f"Exported campaign #{campaign.id}'s board as CSV ({len(shown)} partners)",
    )  # fmt: skip
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="campaign-{campaign.id}.csv"'
    return response


@bp.post("/campaigns/<id:campaign_id>/partners/<id:partner_id>/resend")
@requires(Permission.MANAGE_PARTNERS)
def campaign_resend(campaign_id: int, partner_id: int) -> Rendered:
    """Queue the campaign's email to one partner again."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        message = campaigns.resend(
            db.session, current_actor(), campaign, partner_id, now=request_now()
        )
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Email to {', '.join(message.recipients)} queued again.", "success")
    return _back_to_board(campaign)


@bp.post("/campaigns/<id:campaign_id>/partners/<id:partner_id>/revoke")
@requires(Permission.MANAGE_PARTNERS)
def campaign_revoke(campaign_id: int, partner_id: int) -> Rendered:
    """Revoke one partner's campaign link."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        link = campaigns.revoke(
            db.session, current_actor(), campaign, partner_id, now=request_now()
        )
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Link {link.id} revoked: it no longer opens.", "success")
    return _back_to_board(campaign)


@bp.post("/campaigns/<id:campaign_id>/partners/<id:partner_id>/include")
@requires(Permission.MANAGE_PARTNERS)
def campaign_include(campaign_id: int, partner_id: int) -> Rendered:
    """Bring a partner added since the start into the campaign (its link and email)."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        row = campaigns.include(
            db.session, current_actor(), campaign, partner_id,
            max_uploads=settings().link_default_max_uploads, now=request_now(),
        )  # fmt: skip
    except ServiceError as error:
        flash(error.message, "error")
    else:
        done = "no email: it has no contact" if row.unreachable else "email queued"
        flash(f"{row.partner.name} is in the campaign now: link {row.link_id}, {done}.", "success")
    return _back_to_board(campaign)


@bp.post("/campaigns/<id:campaign_id>/resend-at-risk")
@requires(Permission.MANAGE_PARTNERS)
def campaign_resend_at_risk(campaign_id: int) -> Rendered:
    """Queue the email again to every partner at risk."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    done = campaigns.resend_at_risk(
        db.session, current_actor(), campaign, now=request_now(),
        risk_window=settings().campaign_at_risk,
    )  # fmt: skip
    flash(f"Email queued again to {done.sent} partners at risk.", "success")
    if done.skipped:
        flash(
            "Not sent: " + "; ".join(done.skipped[:20]) + ("; …" if len(done.skipped) > 20 else ""),
            "warning",
        )
    return _back_to_board(campaign)


@bp.post("/campaigns/<id:campaign_id>/revoke-at-risk")
@requires(Permission.MANAGE_PARTNERS)
def campaign_revoke_at_risk(campaign_id: int) -> Rendered:
    """Revoke the working link of every partner at risk."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    done = campaigns.revoke_at_risk(
        db.session, current_actor(), campaign, now=request_now(),
        risk_window=settings().campaign_at_risk,
    )  # fmt: skip
    flash(f"Revoked the links of {len(done.revoked)} partners at risk.", "success")
    if done.skipped:
        flash(f"{done.skipped} partners at risk had no working link to revoke.", "warning")
    return _back_to_board(campaign)


def _back_to_board(campaign: Campaign) -> Response:
    wanted = {key: request.args[key] for key in ("state", "q", "page") if request.args.get(key)}
    return redirect(url_for("staff.campaign_view", campaign_id=campaign.id, **wanted))


def _filters(campaign: Campaign) -> tuple[str, str]:
    state = request.args.get("state", "")
    allowed = {s.value for s in states_of(campaign.asks)} | set(FLAGS)
    return (state if state in allowed else ""), request.args.get("q", "")[:200]


def _start_form() -> CampaignForm:
    form = CampaignForm()
    form.identity.choices = _identity_choices()
    return form


def _request_form() -> CertificateRequestForm:
    form = CertificateRequestForm(prefix="request")
    form.identity.choices = _identity_choices()
    return form


def _identity_choices() -> list[tuple[int, str]]:
    return [
        (identity.id, f"{identity.name} ({identity.as2_id}, {identity.environment})")
        for identity in directory.all_identities(db.session)
    ]


def _switch_moment(form: CampaignForm | CertificateRequestForm) -> datetime | None:
    """The switch as UTC from date, time and zone; None after marking the form."""
    zone = form.timezone.data or ""
    if form.date.data is None or form.time.data is None:
        form.date.errors = ["Give the date and time of the switch."]
        return None
    if not is_valid_timezone(zone):
        form.timezone.errors = ["Choose a time zone."]
        return None
    moment = local_to_utc(form.date.data, form.time.data, zone)
    if moment is None:
        form.date.errors = ["This date and time cannot be used; check the year."]
    return moment


def _start_request(form: CampaignForm, moment: datetime) -> campaigns.StartRequest:
    return campaigns.StartRequest(
        identity=directory.get_identity(db.session, form.identity.data or 0),
        sha256=form.certificate.data or "", activate_at=moment,
        request_upload=bool(form.request_upload.data), message=form.message.data,
        max_uploads=settings().link_default_max_uploads,
    )  # fmt: skip


def _certificate_request(
    form: CertificateRequestForm, moment: datetime
) -> campaign_requests.CertificateRequest:
    limit = form.expiring_before.data
    return campaign_requests.CertificateRequest(
        identity=directory.get_identity(db.session, form.identity.data or 0), due_at=moment,
        expiring_before=datetime.combine(limit, time(0), tzinfo=UTC) if limit else None,
        message=form.message.data, max_uploads=settings().link_default_max_uploads,
    )  # fmt: skip


def _left_out(names: list[str]) -> str:
    shown = "; ".join(names[:20]) + ("; …" if len(names) > 20 else "")
    return f"Not asked again ({len(names)}): {shown}"


def _list_page(
    form: CampaignForm, request_form: CertificateRequestForm, *, status: int = 200
) -> Rendered:
    page = campaigns.list_campaigns(
        db.session, page=page_arg(request.args.get("page")), per_page=settings().page_size
    )
    return render_template(
        "staff/campaigns.html", page=page, form=form, request_form=request_form
    ), status


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
