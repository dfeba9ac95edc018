"""Staff views for change windows agreed with a partner."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, url_for

from portal.clock import request_now
from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import directory, windows
from portal.services.errors import ServiceError
from portal.web import urls
from portal.web.access import current_actor, requires
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ConfirmForm, WhenForm, chosen_moment
from portal.web.staff.pages import Rendered, render_partner_page


@bp.post("/partners/<id:partner_id>/windows")
@requires(Permission.MANAGE_PARTNERS)
def window_propose(partner_id: int) -> Rendered:
    """Propose a change window to the partner."""
    partner = directory.get_partner(db.session, partner_id)
    form = WhenForm(prefix="window")
    now = request_now()
    if form.validate_on_submit():
        form.when.data = "chosen"
        moment = chosen_moment(form, None, now)
        if moment is not None:
            try:
                windows.propose_window_as_staff(
                    db.session, current_actor(), partner, starts_at=moment,
                    timezone=form.timezone.data or partner.timezone, now=now,
                )  # fmt: skip
            except ServiceError as error:
                form.date.errors = [error.message]
            else:
                flash("Window proposed; the partner sees it on their link page.", "success")
                return redirect(url_for("staff.partner_view", partner_id=partner.id) + "#window")
    return render_partner_page(partner, now=now, window_form=form, status=422)


@bp.post("/partners/<id:partner_id>/windows/<id:window_id>/accept")
@requires(Permission.MANAGE_PARTNERS)
def window_accept(partner_id: int, window_id: int) -> Rendered:
    """Accept the window the partner proposed."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    window = windows.get_window(db.session, partner_id, window_id)
    try:
        windows.accept_window(
            db.session, current_actor(), window, by_partner=False, now=request_now()
        )
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash("Window agreed.", "success")
    return redirect(url_for("staff.partner_view", partner_id=partner_id) + "#window")


@bp.get("/partners/<id:partner_id>/window.ics")
@requires(Permission.VIEW)
def window_calendar(partner_id: int) -> Response:
    """The partner's change window as a calendar invitation."""
    partner = directory.get_partner(db.session, partner_id)
    window = windows.latest_window(db.session, partner)
    if window is None:
        abort(404)
    host = urls.host_name()
    response = Response(
        windows.window_ics(window, partner, host=host, now=request_now()), mimetype="text/calendar"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="change-window-{partner.as2_id}.ics"'
    )
    return response
