"""Views of the auth blueprint: sign-in (throttled, audited), confirmation, sign-out."""

from __future__ import annotations

from datetime import datetime
from math import ceil

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user

from portal.extensions import db
from portal.models import User
from portal.services import staff_sessions, users
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.web.access import current_actor, safe_next
from portal.web.auth import sessions, throttle, two_factor
from portal.web.auth.blueprint import bp
from portal.web.auth.forms import ChangePasswordForm, ConfirmPasswordForm, LoginForm
from portal.web.errors import error_page
from portal.web.forms import attach_error

__all__ = ["LOGIN_FAILED", "safe_next"]

LOGIN_FAILED = "Wrong email or password, or the account is disabled."
CONFIRM_FAILED = "That is not your password."

Rendered = Response | tuple[str, int] | str | tuple[str, int, dict[str, str]]


def _anonymous_actor(email: str) -> Actor:
    """Who tries to sign in: the email as typed, where from."""
    label = f"sign-in as {users.typed_email(email)}"
    return Actor(label, None, request.remote_addr, request.headers.get("User-Agent"))


def _too_many(until: datetime) -> tuple[str, int, dict[str, str]]:
    """The 429 page: what happened and when to try again (Retry-After too)."""
    seconds = max(1, ceil((until - datetime.now(until.tzinfo)).total_seconds()))
    minutes = max(1, ceil(seconds / 60))
    message = (
        "Too many failed sign-in attempts for this account or from your address. "
        f"Try again after {until:%H:%M} UTC (in about {minutes} minute"
        f"{'' if minutes == 1 else 's'}). If you forgot your password, ask an admin to reset it."
    )
    page, code = error_page(429, "Too many sign-in attempts", message)
    return page, code, {"Retry-After": str(seconds)}


def _refuse_throttled(email: str, user: User | None, actor: Actor) -> Rendered | None:
    """The 429 answer when EMAIL or this address used up its failures, else None."""
    until = throttle.refused_until(email)
    if until is None:
        return None
    if throttle.first_refusal(email):
        users.record_login_failure(db.session, actor, email=email, user=user, reason="throttled")
        db.commit_despite_status()
    return _too_many(until)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Rendered:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.overview"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/login.html", form=form), status
    email = form.email.data or ""
    actor = _anonymous_actor(email)
    # Checked before the password: a right password after the limit is refused too.
    if (refusal := _refuse_throttled(email, None, actor)) is not None:
        return refusal
    user = users.authenticate(
        db.session,
        email,
        form.password.data or "",
        # Hashing is slow on purpose: it must hold no transaction (nor SQLite's lock).
        before_hashing=db.end_read,
    )
    if user is None:
        throttle.count_failure(email)
        users.record_login_failure(
            db.session, actor, email=email, user=users.find_by_email(db.session, email),
            reason="credentials",
        )  # fmt: skip
        db.commit_despite_status()
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form), 401
    throttle.forget_failures(email)
    # Two-factor sign-in (auth/two_factor.py): the code step signs in instead.
    if second_step := two_factor.begin_second_step(user, safe_next(form.next.data)):
        return second_step
    return _complete_sign_in(user, typed_email=email, next_url=form.next.data)


def _complete_sign_in(
    user: User, *, typed_email: str = "", next_url: str | None = None
) -> Response:
    """The password was right: open the session, audit it, go on."""
    sessions.sign_in(user)
    users.record_login(
        db.session,
        user,
        Actor.for_user(user, request.remote_addr, request.headers.get("User-Agent")),
        email=typed_email,
    )
    if user.must_change_password:
        flash("Choose your own password before you continue.", "info")
        return redirect(url_for("auth.change_password"))
    return redirect(safe_next(next_url) or url_for("staff.overview"))


@bp.route("/login/confirm", methods=["GET", "POST"])
@login_required
def confirm() -> Rendered:
    """Type the password again before a sensitive page (key export, users, tokens, webhooks)."""
    form = ConfirmPasswordForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/confirm.html", form=form), status
    user: User = current_user._get_current_object()
    actor = current_actor()
    until = throttle.refused_until(user.email)
    if until is not None:
        if throttle.first_refusal(user.email):
            users.record_reauthentication(db.session, actor, succeeded=False, reason="throttled")
            db.commit_despite_status()
        return _too_many(until)
    if not users.check_password(user, form.password.data or ""):
        throttle.count_failure(user.email)
        users.record_reauthentication(db.session, actor, succeeded=False, reason="credentials")
        db.commit_despite_status()
        form.password.errors = [CONFIRM_FAILED]
        return render_template("auth/confirm.html", form=form), 401
    throttle.forget_failures(user.email)
    sessions.confirm_password()
    users.record_reauthentication(db.session, actor, succeeded=True, reason="")
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
def change_password() -> Rendered:
    """Change one's own password (required after a one-time password)."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user: User = current_user._get_current_object()
        # The current password is a password check like sign-in's: same budgets, so a
        # copied session cookie cannot be used to guess it without limit.
        if (until := throttle.refused_until(user.email)) is not None:
            return _too_many(until)
        try:
            users.change_password(
                db.session,
                current_actor(),
                user,
                current=form.current_password.data or "",
                new=form.new_password.data or "",
            )
        except ServiceError as error:
            if error.field == "current_password":
                throttle.count_failure(user.email)
            attach_error(form, error)
        else:
            throttle.forget_failures(user.email)
            # The user's token rotated and other sessions end; this one stays signed in.
            sessions.end_other_sessions(
                current_user._get_current_object(), staff_sessions.CREDENTIALS_CHANGED
            )
            login_user(current_user._get_current_object())
            flash("Your password is changed.", "success")
            return redirect(url_for("staff.overview"))
    status = 422 if form.is_submitted() else 200
    return render_template("auth/change_password.html", form=form), status
