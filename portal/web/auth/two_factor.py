"""Two-factor sign-in pages: enrolment under "My account", the sign-in's second step, the guard.

The password step (views.login) calls begin_second_step: for a user with two-factor
sign-in it leaves only a short-lived marker in the (signed) session cookie, naming the
user with their rotating session token, and sends the browser here. Only a right code
then signs in, the same way the password step does for users without a second factor.

require_enrolment runs before every staff request: a user whose role must use a second
factor (PORTAL_TWO_FACTOR_REQUIRED_ROLES) and has none is sent to enrolment, whatever
the URL. It lives here, not in portal.web.access, and is registered by the auth blueprint.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.clock import request_now
from portal.domain import totp
from portal.extensions import db, keyring, limiter
from portal.models import User
from portal.services import two_factor, users
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor
from portal.web.auth import sessions
from portal.web.auth.blueprint import bp
from portal.web.forms import PortalForm, attach_error

Rendered = Response | tuple[str, int] | str

PENDING_KEY = "two_factor_pending"  # the sign-in waiting for its second step
ENROL_KEY = "two_factor_enrol"  # the secret being enrolled, encrypted under the key ring
PENDING_FOR = timedelta(minutes=5)
SETUP_ENDPOINT = "auth.two_factor_setup"
# What a user who must enrol may still reach (static files are served without a blueprint).
ENROL_ALLOWED = frozenset(
    {SETUP_ENDPOINT, "auth.logout", "auth.change_password", "auth.login", "static"}
)
# Partner links, the API (tokens) and health checks are not staff sessions.
NOT_STAFF = frozenset({"partner", "api", "health"})


class CodeForm(PortalForm):
    """A code from the authenticator app, or a recovery code."""

    code = StringField(
        "Code", validators=[DataRequired(), Length(max=64)], render_kw={"autocomplete": "off"}
    )


def begin_second_step(user: User, next_target: str | None) -> Response | None:
    """After the password: for a user with a second factor, the redirect to its step; else None.

    NEXT_TARGET must already be a safe local path (views.safe_next).
    """
    if not two_factor.is_enabled(user):
        return None
    session.clear()  # nothing set before the sign-in survives it (fixation)
    session[PENDING_KEY] = {
        "user": user.get_id(),
        "until": int((request_now() + PENDING_FOR).timestamp()),
        "next": next_target or "",
    }
    return redirect(url_for("auth.two_factor_login"))


def _pending() -> dict[str, object] | None:
    marker = session.get(PENDING_KEY)
    if not isinstance(marker, dict):
        return None
    until = marker.get("until")
    if not isinstance(until, int) or request_now().timestamp() > until:
        session.pop(PENDING_KEY, None)
        return None
    return marker


def _pending_user(marker: dict[str, object]) -> User | None:
    login_id = marker.get("user")
    if not isinstance(login_id, str):
        return None
    # The login id carries the session token: a password change or reset voids the marker.
    return users.find_by_login_id(db.session, login_id)


def _code_limit() -> str:
    return settings().ratelimit_two_factor


def _pending_key() -> str:
    marker = session.get(PENDING_KEY)
    user = marker.get("user") if isinstance(marker, dict) else None
    user_id = str(user).partition(":")[0] if user else "none"
    return f"user:{user_id}"


def _address_key() -> str:
    return request.remote_addr or "unknown"


def _refused(response: Response) -> bool:
    return response.status_code >= 400


@bp.route("/login/two-factor", methods=["GET", "POST"])
@limiter.limit(
    _code_limit, key_func=_pending_key, scope="two-factor-user", deduct_when=_refused
)  # fmt: skip
@limiter.limit(
    _code_limit, key_func=_address_key, scope="two-factor-address", deduct_when=_refused
)  # fmt: skip
def two_factor_login() -> Rendered:
    """The second step of a sign-in: a code from the app, or a recovery code (used up)."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.overview"))
    marker = _pending()
    user = _pending_user(marker) if marker is not None else None
    if marker is None or user is None or not two_factor.is_enabled(user):
        session.pop(PENDING_KEY, None)
        flash("Sign in again: the first step expired or is no longer valid.", "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/two_factor_login.html", form=form), status
    actor = Actor.for_user(user, request.remote_addr, request.headers.get("User-Agent"))
    method = two_factor.check_code(
        db.session, keyring(), actor, user, form.code.data or "", now=request_now()
    )
    if method is None:
        db.commit_despite_status()  # the refused code stays in the audit trail
        attach_error(form, ServiceError(two_factor.WRONG_CODE, field="code"))
        return render_template("auth/two_factor_login.html", form=form), 401
    return _complete_sign_in(user, str(marker.get("next") or ""), method)


def _complete_sign_in(user: User, next_target: str, method: two_factor.Method) -> Response:
    # As views.login does after the password for a user without a second factor.
    sessions.sign_in(user)  # clears the session, so the pending marker too
    users.record_login(
        db.session, user, Actor.for_user(user, request.remote_addr, request.user_agent.string)
    )
    if method == "recovery":
        left = two_factor.remaining_recovery_codes(db.session, user)
        flash(f"You signed in with a recovery code; {left} left.", "warning")
    if user.must_change_password:
        flash("Choose your own password before you continue.", "info")
        return redirect(url_for("auth.change_password"))
    return redirect(next_target or url_for("staff.overview"))


def _me() -> User:
    user: User = current_user._get_current_object()
    return user


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor_setup() -> Rendered:
    """Enrol: scan the QR code (or type the secret), confirm with a code, get recovery codes."""
    user = _me()
    if two_factor.is_enabled(user):
        return _render_enabled(user, CodeForm(), 200)
    secret = two_factor.open_pending_secret(keyring(), user.id, session.get(ENROL_KEY))
    if secret is None:
        secret = totp.new_secret()
        session[ENROL_KEY] = two_factor.seal_pending_secret(keyring(), user.id, secret)
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.enable(
                db.session,
                keyring(),
                current_actor(),
                user,
                secret=secret,
                code=form.code.data or "",
                now=request_now(),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            session.pop(ENROL_KEY, None)
            # Rendered, not redirected: the codes must not travel in a cookie or URL.
            return render_template("auth/two_factor_codes.html", codes=codes)
    _uri, svg = two_factor.provisioning(user, secret)
    return render_template(
        "auth/two_factor_setup.html",
        form=form,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr=Markup(svg),  # noqa: S704  # nosec B704  # segno's own SVG of our URI: no user HTML in it
        required=two_factor.is_required(user, settings().two_factor_required_roles),
    ), 422 if form.is_submitted() else 200


def _render_enabled(
    user: User, form: CodeForm, status: int, codes_form: CodeForm | None = None
) -> Rendered:
    return render_template(
        "auth/two_factor_enabled.html",
        form=form,
        # Its own prefix: two code fields on one page need their own ids.
        codes_form=codes_form or CodeForm(prefix="codes"),
        user=user,
        remaining=two_factor.remaining_recovery_codes(db.session, user),
        required=two_factor.is_required(user, settings().two_factor_required_roles),
    ), status


@bp.post("/account/two-factor/disable")
@login_required
def two_factor_disable() -> Rendered:
    """Turn off one's own second factor, proven by a current code (not for required roles)."""
    user = _me()
    form = CodeForm()
    if not two_factor.is_enabled(user):
        return redirect(url_for(SETUP_ENDPOINT))
    if form.validate_on_submit():
        try:
            two_factor.disable(
                db.session,
                keyring(),
                current_actor(),
                user,
                code=form.code.data or "",
                now=request_now(),
                required_roles=settings().two_factor_required_roles,
            )
        except ServiceError as error:
            db.commit_despite_status()  # a refused code stays in the audit trail
            attach_error(form, error)
        else:
            flash("Two-factor sign-in is off.", "success")
            return redirect(url_for(SETUP_ENDPOINT))
    return _render_enabled(user, form, 422)


@bp.post("/account/two-factor/recovery-codes")
@login_required
def two_factor_new_codes() -> Rendered:
    """Replace one's recovery codes, proven by a current code; the new ones are shown once."""
    user = _me()
    form = CodeForm(prefix="codes")
    if not two_factor.is_enabled(user):
        return redirect(url_for(SETUP_ENDPOINT))
    if form.validate_on_submit():
        try:
            codes = two_factor.regenerate_recovery_codes(
                db.session,
                keyring(),
                current_actor(),
                user,
                code=form.code.data or "",
                now=request_now(),
            )
        except ServiceError as error:
            db.commit_despite_status()  # a refused code stays in the audit trail
            attach_error(form, error)
        else:
            # Rendered, not redirected: the codes must not travel in a cookie or URL.
            return render_template("auth/two_factor_codes.html", codes=codes, renewed=True)
    return _render_enabled(user, CodeForm(), 422, codes_form=form)


@bp.before_app_request
def require_enrolment() -> Response | None:
    """Send a user whose role must use a second factor, and has none, to enrolment."""
    if request.blueprint in NOT_STAFF or request.endpoint in ENROL_ALLOWED:
        return None
    required = settings().two_factor_required_roles
    if not required or request.endpoint is None:
        return None
    # Flask-Login caches the user in g; start from this request's cookie (a fresh app
    # context has nothing cached, but one kept open across requests, as in tests, would).
    g.pop("_login_user", None)
    if not current_user.is_authenticated:
        return None
    if two_factor.must_enrol(_me(), required):
        if request.method == "GET":  # one notice per page visited, none for refused posts
            flash("Your role must sign in with a second factor: set it up to continue.", "info")
        return redirect(url_for(SETUP_ENDPOINT))
    return None
