"""Staff views of the outbox: what waits, what was sent, what failed, and a retry."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import outbox
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor, requires
from portal.web.forms import page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ConfirmForm
from portal.web.staff.pages import Rendered

STATES = tuple(state.value for state in outbox.OutboxState)
ATTENTION = "attention"  # the filter: failed, or sent but refused for some recipients
FILTERS = (*STATES, ATTENTION)


@bp.get("/outbox")
@requires(Permission.MANAGE_OUTBOX)
def outbox_list() -> Rendered:
    """Outgoing emails, newest first, filtered by state (all by default) or to those that
    need attention (failed, or partly refused)."""
    state = _state_arg()
    page = outbox.list_messages(
        db.session,
        state=None if state in ("all", ATTENTION) else outbox.OutboxState(state),
        attention=state == ATTENTION,
        page=page_arg(request.args.get("page")),
        per_page=settings().page_size,
    )
    return render_template(
        "staff/outbox.html",
        page=page,
        state=state,
        states=STATES,
        state_of=outbox.message_state,
        partly_refused=outbox.partly_refused,
        attention_count=outbox.count_needing_attention(db.session),
        max_attempts=outbox.MAX_ATTEMPTS,
        email_on=settings().email_is_on,
        retry_form=ConfirmForm(),
    )


@bp.get("/outbox/<id:message_id>")
@requires(Permission.MANAGE_OUTBOX)
def outbox_message(message_id: int) -> Rendered:
    """One email as it waits or was sent; a link shows as its id, never as a URL."""
    message = outbox.get_message(db.session, message_id)
    return render_template(
        "staff/outbox_message.html",
        message=message,
        state=outbox.message_state(message),
        partly_refused=outbox.partly_refused(message),
        body=outbox.display_body(message),
        max_attempts=outbox.MAX_ATTEMPTS,
        email_on=settings().email_is_on,
        retry_form=ConfirmForm(),
    )


@bp.post("/outbox/<id:message_id>/retry")
@requires(Permission.MANAGE_OUTBOX)
def outbox_retry(message_id: int) -> Rendered:
    """Put a failed email back for the next delivery run."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    message = outbox.get_message(db.session, message_id)
    try:
        outbox.retry(db.session, current_actor(), message)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Message #{message.id} will be sent again by the next delivery run.", "success")
    return redirect(url_for("staff.outbox_list", state=_state_arg()))


def _state_arg() -> str:
    """The state filter of the query string; anything odd means all."""
    state = request.args.get("state", "all")
    return state if state in FILTERS else "all"
