"""Admin pages for webhooks: list, register (the secret is shown once), remove, test, log."""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for

from portal.clock import request_now
from portal.domain.roles import Permission
from portal.extensions import db, keyring
from portal.services import webhooks
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor, requires, requires_recent_login
from portal.web.forms import attach_error, page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ConfirmForm, WebhookForm
from portal.web.staff.pages import Rendered


@bp.get("/webhooks")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhooks_list() -> Rendered:
    """Every webhook with its events and state; the register form."""
    return _list_page(WebhookForm())


@bp.post("/webhooks")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhook_create() -> Rendered:
    """Register a webhook and show its secret once, on a page no cache keeps."""
    form = WebhookForm()
    if form.validate_on_submit():
        try:
            made = webhooks.create(
                db.session, current_actor(), keyring(), form.url.data or "",
                form.events.data or [], now=request_now(),
                allow_private=settings().webhook_allow_private,
            )  # fmt: skip
        except ServiceError as error:
            attach_error(form, error)
        else:
            page = render_template(
                "staff/webhook_created.html", endpoint=made.endpoint, secret=made.secret
            )
            response = make_response(page)
            response.headers["Cache-Control"] = "no-store"
            return response
    return _list_page(form, status=422)


@bp.get("/webhooks/<id:endpoint_id>")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhook_view(endpoint_id: int) -> Rendered:
    """One webhook and its delivery log, newest first."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    page = webhooks.list_deliveries(
        db.session, endpoint, page=page_arg(request.args.get("page")),
        per_page=settings().page_size,
    )  # fmt: skip
    return render_template(
        "staff/webhook.html",
        endpoint=endpoint,
        page=page,
        state_of=webhooks.delivery_state,
        is_active=webhooks.is_active(endpoint),
        max_attempts=webhooks.MAX_ATTEMPTS,
        confirm_form=ConfirmForm(),
    )


@bp.post("/webhooks/<id:endpoint_id>/remove")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhook_remove(endpoint_id: int) -> Rendered:
    """Stop sending to a webhook; its log stays."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    _confirmed()
    try:
        webhooks.remove(db.session, current_actor(), endpoint.id, now=request_now())
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Webhook #{endpoint.id} removed; nothing more is sent to it.", "success")
    return redirect(url_for("staff.webhooks_list"))


@bp.post("/webhooks/<id:endpoint_id>/test")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhook_test(endpoint_id: int) -> Rendered:
    """Queue a test event to one webhook; the next delivery run posts it."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    _confirmed()
    try:
        delivery = webhooks.send_test(db.session, current_actor(), endpoint, now=request_now())
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(
            f"Test delivery #{delivery.id} queued; the next delivery run (portal run-due or "
            "portal scheduler) posts it.",
            "success",
        )
    return redirect(url_for("staff.webhook_view", endpoint_id=endpoint.id))


@bp.post("/webhooks/<id:endpoint_id>/deliveries/<id:delivery_id>/retry")
@requires(Permission.MANAGE_WEBHOOKS)
@requires_recent_login
def webhook_retry(endpoint_id: int, delivery_id: int) -> Rendered:
    """Put a failed delivery back for the next delivery run."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    delivery = webhooks.get_delivery(db.session, endpoint, delivery_id)
    _confirmed()
    try:
        webhooks.retry(db.session, current_actor(), delivery, now=request_now())
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"Delivery #{delivery.id} will be posted again by the next run.", "success")
    return redirect(url_for("staff.webhook_view", endpoint_id=endpoint.id))


def _confirmed() -> None:
    """Refuse a POST without a valid CSRF token (400)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)


def _list_page(form: WebhookForm, *, status: int = 200) -> Rendered:
    page = webhooks.list_endpoints(
        db.session, page=page_arg(request.args.get("page")), per_page=settings().page_size
    )
    return render_template(
        "staff/webhooks.html",
        page=page,
        form=form,
        is_active=webhooks.is_active,
        allow_private=settings().webhook_allow_private,
    ), status
