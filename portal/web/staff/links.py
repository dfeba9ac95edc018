"""Staff views for share links and received submissions."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from portal.clock import request_now
from portal.domain.roles import Permission
from portal.domain.tokens import parse_duration
from portal.domain.vocab import SubmissionStatus, values_of
from portal.extensions import db, link_signer
from portal.models import ShareLink
from portal.services import directory, links, schedule, submissions
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor, requires
from portal.web.forms import page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ConfirmForm, LinkForm
from portal.web.staff.pages import Rendered, render_partner_page


@bp.post("/partners/<id:partner_id>/links")
@requires(Permission.MANAGE_PARTNERS)
def link_create(partner_id: int) -> Rendered:
    """Issue a share link for the partner."""
    partner = directory.get_partner(db.session, partner_id)
    form = LinkForm(prefix="link")
    if form.validate_on_submit():
        try:
            lifetime = parse_duration(form.expires.data or "")
        except ValueError as error:
            form.expires.errors = [str(error)]
        else:
            try:
                link, _token = links.create_link(
                    db.session,
                    current_actor(),
                    link_signer(),
                    partner,
                    can_download="download" in (form.purposes.data or []),
                    can_upload="upload" in (form.purposes.data or []),
                    lifetime=lifetime,
                    max_uploads=int(form.max_uploads.data or 0),
                    now=request_now(),
                )
            except ServiceError as error:
                form.purposes.errors = [error.message]
            else:
                flash(f"Link {link.id} created. Copy it or email it to the partner.", "success")
                return redirect(url_for("staff.partner_view", partner_id=partner.id) + "#links")
    return render_partner_page(partner, now=request_now(), link_form=form, status=422)


@bp.post("/partners/<id:partner_id>/links/<link_id>/revoke")
@requires(Permission.MANAGE_PARTNERS)
def link_revoke(partner_id: int, link_id: str) -> Rendered:
    """Stop a link from working."""
    link = _link_or_404(partner_id, link_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        links.revoke(db.session, current_actor(), link, request_now())
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Link {link.id} revoked: it no longer opens.", "success")
    return redirect(url_for("staff.partner_view", partner_id=partner_id) + "#links")


@bp.post("/partners/<id:partner_id>/links/<link_id>/email")
@requires(Permission.MANAGE_PARTNERS)
def link_email(partner_id: int, link_id: str) -> Rendered:
    """Queue the link by email to the partner's contacts."""
    link = _link_or_404(partner_id, link_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if links.link_state(link, request_now()) is not links.LinkState.ACTIVE:
        flash("This link no longer works; create a new one to send.", "error")
    else:
        links.email_link(
            db.session, current_actor(), link, sender_org=link.partner.identity.organisation
        )
        recipients = ", ".join(link.partner.contact_emails)
        if settings().email_is_on:
            flash(f"Email to {recipients} queued; it leaves with the next delivery run.", "success")
        else:
            flash(
                f"Email to {recipients} queued, but email is off (PORTAL_SMTP_HOST is not set): "
                "it waits in the outbox until email is turned on.",
                "warning",
            )
    return redirect(url_for("staff.partner_view", partner_id=partner_id) + "#links")


@bp.get("/submissions")
@requires(Permission.VIEW)
def submissions_list() -> Rendered:
    """Submissions from partners, newest first, filtered by status (received by default)."""
    status = request.args.get("status", "received")
    if status not in (*values_of(SubmissionStatus), "all"):
        status = "received"
    query = request.args.get("q", "")[:200]
    page = submissions.list_submissions(
        db.session,
        query=query,
        status=None if status == "all" else status,
        page=page_arg(request.args.get("page")),
        per_page=settings().page_size,
    )
    return render_template(
        "staff/submissions.html",
        page=page,
        status=status,
        statuses=(*values_of(SubmissionStatus), "all"),
        q=query,
        windows=submissions.proposed_windows(db.session, page.items),
        schedules=schedule.schedules_waiting(db.session) if status in ("received", "all") else [],
    )


def _link_or_404(partner_id: int, link_id: str) -> ShareLink:
    link = links.get_link(db.session, link_id)
    if link.partner_id != partner_id:
        abort(404)
    return link
