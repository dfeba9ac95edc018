"""Admin pages for API tokens: list, create (the secret is shown once), revoke."""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for

from portal.clock import request_now
from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import api_tokens
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor, requires, requires_recent_login
from portal.web.forms import page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ApiTokenForm, ConfirmForm
from portal.web.staff.pages import Rendered


@bp.get("/tokens")
@requires(Permission.MANAGE_TOKENS)
@requires_recent_login
def tokens_list() -> Rendered:
    """Every API token with its scopes, creator, last use and state; the create form."""
    return _list_page(ApiTokenForm())


@bp.post("/tokens")
@requires(Permission.MANAGE_TOKENS)
@requires_recent_login
def token_create() -> Rendered:
    """Make a token and show its secret once, on a page no cache keeps."""
    form = ApiTokenForm()
    if form.validate_on_submit():
        try:
            made = api_tokens.create(
                db.session,
                current_actor(),
                form.name.data or "",
                form.scopes.data or [],
                now=request_now(),
            )
        except ServiceError as error:
            target = form.scopes if error.field == "scopes" else form.name
            target.errors = [error.message]
        else:
            response = make_response(
                render_template("staff/token_created.html", token=made.token, secret=made.secret)
            )
            response.headers["Cache-Control"] = "no-store"
            return response
    return _list_page(form, status=422)


@bp.post("/tokens/<id:token_id>/revoke")
@requires(Permission.MANAGE_TOKENS)
@requires_recent_login
def token_revoke(token_id: int) -> Rendered:
    """Stop a token from working."""
    token = api_tokens.get_token(db.session, token_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        api_tokens.revoke(db.session, current_actor(), token.name, now=request_now())
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"API token {token.name} revoked.", "success")
    return redirect(url_for("staff.tokens_list"))


def _list_page(form: ApiTokenForm, *, status: int = 200) -> Rendered:
    page = api_tokens.list_tokens(
        db.session, page=page_arg(request.args.get("page")), per_page=settings().page_size
    )
    return render_template(
        "staff/tokens.html",
        page=page,
        form=form,
        is_active=api_tokens.is_active,
        confirm_form=ConfirmForm(),
    ), status
