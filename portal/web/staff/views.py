"""Views of the staff blueprint. Thin: parse the request, call a service, render."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.clock import request_now
from portal.domain import partner_progress
from portal.domain.languages import DEFAULT_LANGUAGE
from portal.domain.roles import Permission
from portal.domain.tokens import parse_duration
from portal.extensions import db, link_signer
from portal.services import audit, campaign_board, dashboard, directory, drafts, two_factor, users
from portal.services.errors import ServiceError
from portal.services.pagination import CursorError
from portal.settings import settings
from portal.web.access import current_actor, requires, requires_recent_login
from portal.web.errors import error_page
from portal.web.forms import attach_error, default_timezone, page_arg
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import (
    ConfirmForm,
    IdentityForm,
    PartnerForm,
    UserCreateForm,
    UserEditForm,
    split_emails,
)
from portal.web.staff.pages import (
    Rendered,
    cursor_args,
    identity_page_context,
    render_partner_page,
)


@bp.errorhandler(CursorError)
def bad_cursor(error: CursorError) -> Rendered:
    """An edited or broken "next page" address: 400, saying how to start again."""
    return error_page(400, "Bad page address", error.message)


DRAFTS_SHOWN = 10  # draft upload requests on the dashboard


def _per_page() -> int:
    return settings().page_size


def _status(form: FlaskForm) -> int:
    """200 for a first display, 422 when a submitted form is shown again with errors."""
    return 422 if form.is_submitted() else 200


@bp.get("/")
@requires(Permission.VIEW)
def overview() -> Rendered:
    """The dashboard: what expires, what waits, what happens next, the latest activity."""
    session, now, overlap = db.session, request_now(), settings().certificate_overlap
    drafts_shown, drafts_count = drafts.first_drafts(session, now=now, limit=DRAFTS_SHOWN)
    board = dashboard.build(session, now=now, overlap=overlap)
    return render_template(
        "staff/overview.html",
        board=board,
        event_names=audit.events_names(session, board.events),
        campaigns_at_risk=campaign_board.at_risk_counts(
            session, now=now, risk_window=settings().campaign_at_risk
        ),
        drafts=drafts_shown,
        drafts_count=drafts_count,
        draft_days=drafts.DRAFT_DAYS,
        confirm_form=ConfirmForm(),
        contact_unset=_unreachable_contact(settings().contact_email),
    )


def _unreachable_contact(address: str) -> str | None:
    """The address partners are told to write to, when nobody can receive mail there."""
    return None if partner_progress.reachable(address) else address


@bp.post("/upload-requests/<int:partner_id>")
@requires(Permission.MANAGE_PARTNERS)
def upload_request_send(partner_id: int) -> Rendered:
    """Send a draft upload request: an upload link, emailed to the partner's contacts."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    config = settings()
    try:
        link = drafts.send(
            db.session, current_actor(), link_signer(), partner_id, now=request_now(),
            overlap=config.certificate_overlap,
            lifetime=parse_duration(config.link_default_expiry),
            max_uploads=config.link_default_max_uploads,
        )  # fmt: skip
    except ServiceError as error:  # refused before anything was written
        flash(error.message, "error")
    else:
        flash(
            f"Upload request sent to {', '.join(link.partner.contact_emails)} (link {link.id}).",
            "success",
        )
    return redirect(url_for("staff.overview"))


# Identities ---------------------------------------------------------------------------


@bp.get("/identities")
@requires(Permission.VIEW)
def identities() -> Rendered:
    """Paginated, searchable list of identities."""
    query = request.args.get("q", "")[:200]
    page = directory.list_identities(
        db.session, query=query, page=page_arg(request.args.get("page")), per_page=_per_page()
    )
    return render_template("staff/identities.html", page=page, q=query)


@bp.route("/identities/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_PARTNERS)
def identity_new() -> Rendered:
    """Add an identity."""
    form = IdentityForm()
    if form.validate_on_submit():
        try:
            identity = directory.create_identity(db.session, current_actor(), _identity_data(form))
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(f"Identity {identity.name} created.", "success")
            return redirect(url_for("staff.identity_view", identity_id=identity.id))
    return render_template("staff/identity_form.html", form=form, identity=None), _status(form)


@bp.get("/identities/<id:identity_id>")
@requires(Permission.VIEW)
def identity_view(identity_id: int) -> Rendered:
    """One identity, one page of its partners (searchable) and its history."""
    identity = directory.get_identity(db.session, identity_id)
    return render_template(
        "staff/identity.html",
        identity=identity,
        history=audit.latest_for(db.session, "identity", identity.id, limit=20),
        **identity_page_context(identity),
    )


@bp.route("/identities/<id:identity_id>/edit", methods=["GET", "POST"])
@requires(Permission.MANAGE_PARTNERS)
def identity_edit(identity_id: int) -> Rendered:
    """Edit an identity."""
    identity = directory.get_identity(db.session, identity_id)
    form = IdentityForm(obj=identity)
    if form.validate_on_submit():
        try:
            directory.update_identity(db.session, current_actor(), identity, _identity_data(form))
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(f"Identity {identity.name} saved.", "success")
            return redirect(url_for("staff.identity_view", identity_id=identity.id))
    partner_count = directory.count_partners(db.session, identity.id)
    return render_template(
        "staff/identity_form.html", form=form, identity=identity, partner_count=partner_count
    ), _status(form)


def _identity_data(form: IdentityForm) -> directory.IdentityData:
    return directory.IdentityData(
        name=form.name.data or "",
        as2_id=(form.as2_id.data or "").strip(),
        environment=form.environment.data or "production",
        organisation=form.organisation.data or "",
        contact_email=(form.contact_email.data or "").strip() or None,
    )


# Partners -----------------------------------------------------------------------------


@bp.get("/partners")
@requires(Permission.VIEW)
def partners() -> Rendered:
    """Searchable list of partners by name, optionally of one identity; keyset pages."""
    query = request.args.get("q", "")[:200]
    identity_arg = request.args.get("identity", "")
    identity_id = int(identity_arg) if identity_arg.isdigit() and len(identity_arg) < 10 else None
    page = directory.browse_partners(
        db.session, query=query, identity_id=identity_id, **cursor_args(), per_page=_per_page()
    )
    return render_template(
        "staff/partners.html",
        page=page,
        q=query,
        identity_id=identity_id,
        identities=directory.all_identities(db.session),
    )


@bp.route("/partners/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_PARTNERS)
def partner_new() -> Rendered:
    """Add a partner."""
    form = PartnerForm()
    _identity_choices(form)
    if not form.identity_id.choices:
        flash("Create one of our identities first: every partner trades with one.", "info")
        return redirect(url_for("staff.identity_new"))
    if request.method == "GET" and request.args.get("identity", "").isdigit():
        form.identity_id.data = int(request.args["identity"])
    if form.validate_on_submit():
        try:
            partner = directory.create_partner(db.session, current_actor(), _partner_data(form))
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(f"Partner {partner.name} created.", "success")
            return redirect(url_for("staff.partner_view", partner_id=partner.id))
    return render_template("staff/partner_form.html", form=form, partner=None), _status(form)


@bp.get("/partners/<id:partner_id>")
@requires(Permission.VIEW)
def partner_view(partner_id: int) -> Rendered:
    """One partner: certificates, links, submissions, history."""
    return render_partner_page(directory.get_partner(db.session, partner_id), now=request_now())


@bp.route("/partners/<id:partner_id>/edit", methods=["GET", "POST"])
@requires(Permission.MANAGE_PARTNERS)
def partner_edit(partner_id: int) -> Rendered:
    """Edit a partner."""
    partner = directory.get_partner(db.session, partner_id)
    form = PartnerForm(obj=partner)
    _identity_choices(form)
    if form.validate_on_submit():
        try:
            directory.update_partner(db.session, current_actor(), partner, _partner_data(form))
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(f"Partner {partner.name} saved.", "success")
            return redirect(url_for("staff.partner_view", partner_id=partner.id))
    return render_template("staff/partner_form.html", form=form, partner=partner), _status(form)


def _identity_choices(form: PartnerForm) -> None:
    form.identity_id.choices = [
        (identity.id, f"{identity.name} ({identity.as2_id}, {identity.environment})")
        for identity in directory.all_identities(db.session)
    ]


def _partner_data(form: PartnerForm) -> directory.PartnerData:
    return directory.PartnerData(
        name=form.name.data or "",
        as2_id=(form.as2_id.data or "").strip(),
        identity_id=int(form.identity_id.data or 0),
        contact_emails=split_emails(form.contact_emails.data or ""),
        timezone=form.timezone.data or default_timezone(),
        language=form.language.data or DEFAULT_LANGUAGE,
    )


# Users --------------------------------------------------------------------------------


@bp.get("/users")
@requires(Permission.MANAGE_USERS)
@requires_recent_login
def users_list() -> Rendered:
    """Staff accounts."""
    query = request.args.get("q", "")[:200]
    page = users.list_users(
        db.session, query=query, page=page_arg(request.args.get("page")), per_page=_per_page()
    )
    return render_template("staff/users.html", page=page, q=query)


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
@requires_recent_login
def user_new() -> Rendered:
    """Create a staff account and show its one-time password once."""
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user, password = users.create_user(
                db.session,
                current_actor(),
                email=form.email.data or "",
                role=form.role.data or "",
                timezone=form.timezone.data or default_timezone(),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            # Rendered, not redirected: the password must not travel in a cookie or URL.
            return render_template("staff/user_created.html", user=user, password=password)
    return render_template("staff/user_form.html", form=form), _status(form)


@bp.route("/users/<id:user_id>/edit", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
@requires_recent_login
def user_edit(user_id: int) -> Rendered:
    """Change a user's role, status or time zone."""
    user = users.get_user(db.session, user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit():
        try:
            users.update_user(
                db.session,
                current_actor(),
                user,
                role=form.role.data or "",
                is_enabled=bool(form.is_enabled.data),
                timezone=form.timezone.data or default_timezone(),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(f"User {user.email} saved.", "success")
            return redirect(url_for("staff.users_list"))
    history = audit.events_for(db.session, "user", user.id, page=1, per_page=20)
    return render_template(
        "staff/user_edit.html",
        form=form,
        user=user,
        reset_form=ConfirmForm(),
        history=history.items,
    ), _status(form)


@bp.post("/users/<id:user_id>/reset-password")
@requires(Permission.MANAGE_USERS)
@requires_recent_login
def user_reset_password(user_id: int) -> Rendered:
    """Give a user a new one-time password, shown once."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    user = users.get_user(db.session, user_id)
    password = users.reset_password(db.session, current_actor(), user)
    return render_template("staff/user_created.html", user=user, password=password, reset=True)


@bp.post("/users/<id:user_id>/reset-two-factor")
@requires(Permission.MANAGE_USERS)
def user_reset_two_factor(user_id: int) -> Rendered:
    """Remove a user's second factor (lost phone and codes); audited."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    user = users.get_user(db.session, user_id)
    two_factor.reset(db.session, current_actor(), user)
    flash(f"Two-factor sign-in of {user.email} is reset.", "success")
    return redirect(url_for("staff.user_edit", user_id=user.id))


# Audit --------------------------------------------------------------------------------


def _audit_filters() -> audit.AuditFilter:
    """The audit filters of this request's query; dates are days in the viewer's zone."""
    args = request.args
    return audit.AuditFilter(
        action=args.get("action", ""),
        actor=args.get("actor", ""),
        object_type=args.get("object_type", ""),
        object_id=args.get("object_id", ""),
        partner=args.get("partner", ""),
        identity=args.get("identity", ""),
        date_from=args.get("from", ""),
        date_to=args.get("to", ""),
        zone=getattr(current_user, "timezone", None) or "UTC",
    ).cleaned()


@bp.get("/audit")
@requires(Permission.VIEW)
def audit_log() -> Rendered:
    """Every recorded action, newest first, filtered; keyset pages ("newer" / "older")."""
    filters = _audit_filters()
    try:
        page = audit.list_events(db.session, filters, **cursor_args(), per_page=_per_page())
    except ValueError as error:
        return error_page(400, "Bad date", str(error))
    # Partners acting through a link are stored as "partner via link <id>": named here.
    names = audit.events_names(db.session, page.items)
    return render_template("staff/audit.html", page=page, filters=filters, names=names)


@bp.get("/audit.csv")
@requires(Permission.VIEW)
def audit_csv() -> Rendered:
    """The filtered events as CSV, newest first, streamed (any size, bounded memory).

    The export itself is audited (who exported what): an auditor sees who took the trail.
    """
    filters = _audit_filters()
    try:
        rows = audit.export_rows(db.session, filters)
    except ValueError as error:
        return error_page(400, "Bad date", str(error))
    audit.record(
        db.session, current_actor(), "audit.exported", object_type="audit", object_id="csv",
        summary="Exported the audit trail as CSV"
        + (" (" + ", ".join(f"{k}={v}" for k, v in filters.query().items()) + ")"
           if filters.active else ""),
        details={"filters": filters.query()},
    )  # fmt: skip
    response = Response(stream_with_context(_csv_lines(rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response


def _csv_lines(rows: Iterator[tuple[object, ...]]) -> Iterator[str]:
    """The CSV header, then a line per event; cells a spreadsheet will not run as formulas."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(audit.EXPORT_COLUMNS)
    for n, row in enumerate(rows, start=1):
        writer.writerow(_audit_cell(value) for value in row)
        if n % 500 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _audit_cell(value: object) -> str:
    """A CSV cell: times in UTC ISO, details as JSON, never a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
