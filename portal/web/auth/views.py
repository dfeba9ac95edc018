"""Views of the auth blueprint."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user

from portal.extensions import db
from portal.services import staff_sessions, users
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.web.access import current_actor
from portal.web.auth import sessions, two_factor
from portal.web.auth.blueprint import bp
from portal.web.auth.forms import ChangePasswordForm, LoginForm
from portal.web.forms import attach_error

LOGIN_FAILED = "Wrong email or password, or the account is disabled."


def safe_next(target: str | None) -> str | None:
    """TARGET if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.overview"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/login.html", form=form), status
    user = users.authenticate(
        db.session,
        form.email.data or "",
        form.password.data or "",
        # Hashing is slow on purpose: it must hold no transaction (nor SQLite's lock).
        before_hashing=db.end_read,
    )
    if user is None:
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form), 401
    # Two-factor sign-in (auth/two_factor.py): the code step signs in instead.
    if second_step := two_factor.begin_second_step(user, safe_next(form.next.data)):
        return second_step
    sessions.sign_in(user)
    users.record_login(
        db.session, user, Actor.for_user(user, request.remote_addr, request.user_agent.string)
    )
    if user.must_change_password:
        flash("Choose your own password before you continue.", "info")
        return redirect(url_for("auth.change_password"))
    return redirect(safe_next(form.next.data) or url_for("staff.overview"))


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out: the session ends on the server, so a copy of the cookie stops working too."""
    users.record_logout(db.session, current_actor())
    sessions.sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response | tuple[str, int] | str:
    """Change one's own password (required after a one-time password)."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            users.change_password(
                db.session,
                current_actor(),
                current_user._get_current_object(),
                current=form.current_password.data or "",
                new=form.new_password.data or "",
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            # The user's token rotated and other sessions end; this one stays signed in.
            sessions.end_other_sessions(
                current_user._get_current_object(), staff_sessions.CREDENTIALS_CHANGED
            )
            login_user(current_user._get_current_object())
            flash("Your password is changed.", "success")
            return redirect(url_for("staff.overview"))
    status = 422 if form.is_submitted() else 200
    return render_template("auth/change_password.html", form=form), status
