"""Views of the partner blueprint. A GET never consumes a use; tokens never reach a log."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from flask import Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.clock import request_now
from portal.domain.certs import MAX_INPUT_BYTES, colon_fingerprint
from portal.extensions import csrf, db, limiter, link_signer
from portal.models import ShareLink
from portal.services import (
    acknowledgements,
    certificates,
    config_export,
    invitations,
    links,
    submissions,
    windows,
)
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.services.submissions import Outcome
from portal.settings import settings
from portal.timeutil import is_valid_timezone, local_to_utc
from portal.web import urls
from portal.web.forms import attach_error, default_timezone
from portal.web.partner import findings, i18n, pages, zones
from portal.web.partner.blueprint import bp
from portal.web.partner.forms import AcknowledgeForm, UploadForm, WindowForm

Rendered = str | tuple[str, int] | Response
# The check messages the page translates (finding_text); imported so they are part of it.
TRANSLATED_FINDINGS = findings.STATIC_FINDINGS


def _invalid_link_limit() -> str:
    return settings().ratelimit_invalid_links


def _counts_against_limit(response: Response) -> bool:
    # Only failed look-ups count: guessing tokens is what the limit is for.
    return response.status_code in (404, 410)


# One budget per client address across every partner route (not one per route).
limited = limiter.shared_limit(
    _invalid_link_limit,
    scope="partner-links",
    deduct_when=_counts_against_limit,
    key_func=lambda: request.remote_addr or "unknown",
)


def _actor(link: ShareLink) -> Actor:
    return links.partner_actor(link, request.remote_addr, request.headers.get("User-Agent"))


def _open(token: str, *, as_json: bool = False) -> ShareLink:
    """The link for TOKEN if it works; 404 (unknown) or 410 (expired, revoked) otherwise."""
    return _usable(links.resolve(db.session, link_signer(), token), as_json=as_json)


def _usable(link: ShareLink | None, *, as_json: bool = False) -> ShareLink:
    """LINK if it works; abort with 404 (no such link) or 410 (expired, revoked) otherwise."""
    if link is None:
        message = _gone_message("unknown", None)
        if as_json or request.endpoint == "partner.machine_upload":
            abort(Response(_json_error(message, 404), status=404, mimetype="application/json"))
        abort(Response(render_template("partner/gone.html", message=message), status=404))
    state = links.link_state(link, request_now())
    if state is not links.LinkState.ACTIVE:
        kind = "expired" if state is links.LinkState.EXPIRED else "withdrawn"
        message = _gone_message(kind, link)
        if as_json:
            abort(Response(_json_error(message, 410), status=410, mimetype="application/json"))
        abort(Response(render_template("partner/gone.html", message=message), status=410))
    return link


def _gone_message(kind: str, link: ShareLink | None) -> str:
    """Why a link does not work (KIND: unknown, expired, withdrawn) and whom to ask."""
    contacts = pages.contacts_of(link)
    if not contacts:
        return {
            "unknown": _(
                "This link is not valid. Check that you copied the whole address from the "
                "email, or reply to the email that brought you the link."
            ),
            "expired": _(
                "This link has expired. Reply to the email that brought you the link to ask "
                "for a new one."
            ),
            "withdrawn": _(
                "This link has been withdrawn. Reply to the email that brought you the link "
                "to ask for a new one."
            ),
        }[kind]
    contact = contacts[0]
    if kind == "unknown":
        return _(
            "This link is not valid. Check that you copied the whole address from the email, "
            "or write to %(contact)s.",
            contact=contact,
        )
    if kind == "expired":
        return _(
            "This link has expired. Ask your contact for a new one, or write to %(contact)s.",
            contact=contact,
        )
    return _(
        "This link has been withdrawn. Ask your contact for a new one, or write to %(contact)s.",
        contact=contact,
    )


def _json_error(message: str, status: int) -> str:
    return json.dumps({"error": message, "status": status})


@bp.get("/s/<token>")
@limited
def link_page(token: str) -> Rendered:
    """The partner's page: who asks what, our certificates, upload, window, acknowledgement."""
    # One query for the link, its partner, identity, window and acknowledgement; the page
    # adds one for our certificates and one for the partner's submissions.
    loaded = links.resolve_for_page(db.session, link_signer(), token)
    link = _usable(loaded.link if loaded is not None else None)
    page = _render_page(link, token, loaded=loaded)
    # After rendering, so a write is the request's last step before its commit. A reload
    # within links.OPEN_RECOUNT writes nothing.
    links.record_open(db.session, _actor(link), link, request_now())
    return page


@bp.get("/s/<token>/language/<code>")
@limited
def set_language(token: str, code: str) -> Response:
    """The switcher: remember CODE in a cookie and go back to this link's page.

    The way back is built here from the token, never taken from the request, so the route
    cannot send anyone elsewhere. The partner's stored language (for emails) is unchanged.
    """
    language = i18n.supported_language(code)
    if language is None:
        abort(404)
    response = redirect(url_for("partner.link_page", token=token))
    response.set_cookie(
        i18n.COOKIE,
        language,
        max_age=i18n.COOKIE_MAX_AGE,
        path=i18n.COOKIE_PATH,
        secure=_cookie_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def _cookie_secure() -> bool:
    """Whether cookies are marked Secure (as the session cookie is)."""
    return bool(current_app.config.get("SESSION_COOKIE_SECURE"))


@bp.get("/time-zones.json")
def time_zones() -> Response:
    """Every time zone for the partner page's picker; the same for everyone, cached long."""
    body, version = zones.all_zones_json()
    response = Response(body, mimetype="application/json")
    response.set_etag(version)
    # The page links it with ?v=<version>: that address never changes content.
    lifetime = 365 * 24 * 3600 if request.args.get("v") == version else 24 * 3600
    response.headers["Cache-Control"] = f"public, max-age={lifetime}"
    return response.make_conditional(request)


@bp.get("/s/<token>/certificates/<sha256>.<fmt>")
@limited
def download(token: str, sha256: str, fmt: str) -> Response:
    """One of our certificates, in a server-chosen file name."""
    link = _open(token)
    if not link.can_download or fmt not in certificates.FORMATS:
        abort(404)
    certificate = links.find_shown_certificate(
        db.session, link.partner, sha256, now=request_now(), overlap=settings().certificate_overlap
    )
    if certificate is None:
        abort(404)
    content, mimetype, name = certificates.public_file(certificate, fmt)
    links.record_download(db.session, _actor(link), link, certificate, fmt)
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/s/<token>/certificates.json")
@limited
def certificates_feed(token: str) -> Response:
    """Our certificates for the partner's automation, in the API's usage shape; writes nothing."""
    link = _open(token, as_json=True)
    if not link.can_download:
        message = "This link was issued for uploading only; it offers no certificates."
        return Response(_json_error(message, 403), status=403, mimetype="application/json")
    document = config_export.partner_feed(
        db.session, link.partner, at=request_now(), overlap=settings().certificate_overlap
    )
    response = Response(document.to_json(), mimetype="application/json")
    response.set_etag(document.version)
    return response.make_conditional(request)  # a partner's identity has few certificates


@bp.post("/s/<token>/upload")
@limited
def upload(token: str) -> Rendered:
    """Step 1 checks the file and shows the report; step 2 (confirmed) submits it."""
    link = _open(token)
    form = UploadForm()
    if not form.validate_on_submit():
        return _render_page(link, token, upload_form=form, status=422)
    data = _form_certificate(form)
    if data is None:
        form.certificate.errors = [_("Choose a file or paste the certificate text.")]
        return _render_page(link, token, upload_form=form, status=422)
    if len(data) > MAX_INPUT_BYTES:
        return _render_page(link, token, upload_form=form, too_large=True, status=413)
    window_start = _window_start(form.window_date.data, form.window_time.data, form)
    if window_start is False:
        return _render_page(link, token, upload_form=form, status=422)
    try:
        outcome = _submit_upload(link, form, data, window_start or None)
    except ServiceError as error:
        attach_error(form, error)
        return _render_page(
            link,
            token,
            upload_form=form,
            page_error=error.message,
            error_at="upload",
            status=error.http_status,
        )
    return _upload_answer(link, token, form, data, outcome)


def _submit_upload(
    link: ShareLink, form: UploadForm, data: bytes, window_start: datetime | None
) -> Outcome:
    """Hand the checked form to the service: stored, refused, or awaiting confirmation."""
    return submissions.submit_via_link(
        db.session,
        _actor(link),
        link,
        data=data,
        usage=form.usage.data or "both",
        now=request_now(),
        overlap=settings().certificate_overlap,
        confirm_warnings=bool(form.confirm_warnings.data),
        proposed_window_start=window_start,
        proposed_timezone=form.window_timezone.data,
        contact_name=form.contact_name.data,
        contact_email=form.contact_email.data,
    )


def _upload_answer(
    link: ShareLink, token: str, form: UploadForm, data: bytes, outcome: Outcome
) -> Rendered:
    """The report (refused, or warnings to confirm) or, once stored, back to the page."""
    if outcome.refused:
        db.commit_despite_status()  # the refusal is audited; nothing else was written
        return _render_page(link, token, upload_form=form, outcome=outcome, status=422)
    if outcome.needs_confirmation:
        # The file came carried from step 1: this was "Send this certificate" without the tick.
        unticked = bool(form.carried.data)
        form.carried.data = base64.b64encode(data).decode("ascii")
        if unticked:
            form.confirm_warnings.errors = [
                _("Tick this box to confirm you read the warnings above, or choose another file.")
            ]
            return _render_page(link, token, upload_form=form, outcome=outcome, status=422)
        return _render_page(link, token, upload_form=form, outcome=outcome)
    assert outcome.submission is not None  # noqa: S101  (stored or found)
    return redirect(
        url_for("partner.link_page", token=token, received=outcome.submission.id) + "#upload"
    )


@bp.post("/s/<token>/certificate")
@csrf.exempt  # machine upload: the token in the URL is the credential, no cookie is used
@limited
def machine_upload(token: str) -> tuple[Response, int]:
    """Raw PEM/DER body or multipart field `certificate`; answers JSON with the report."""
    link = _open(token, as_json=True)
    if "certificate" in request.files:
        data = request.files["certificate"].read(MAX_INPUT_BYTES + 1)
    elif request.mimetype == "multipart/form-data":
        return jsonify(error="Send the file in the multipart field 'certificate'."), 400
    else:
        data = request.get_data(cache=False)
    usage = request.values.get("usage", "both")
    if len(data) > MAX_INPUT_BYTES:
        return jsonify(error=f"The file is larger than {MAX_INPUT_BYTES // 1024} KiB."), 413
    if not data:
        return jsonify(error="The request body is empty; send the certificate file."), 400
    # A refusal (closed link, unknown usage) answers JSON through the blueprint's handler.
    outcome = submissions.submit_via_link(
        db.session,
        _actor(link),
        link,
        data=data,
        usage=usage,
        now=request_now(),
        overlap=settings().certificate_overlap,
        confirm_warnings=True,  # a script cannot tick a box; warnings are in the report
    )
    return _machine_answer(outcome)


def _machine_answer(outcome: Outcome) -> tuple[Response, int]:
    body = {"report": outcome.report.to_dict(), "submission_id": None, "status": "refused"}
    if outcome.refused:
        db.commit_despite_status()  # keep the audit entry of the refusal
        return jsonify(body), 422
    assert outcome.submission is not None  # noqa: S101  (stored or found)
    body["submission_id"] = outcome.submission.id
    body["status"] = outcome.submission.status
    body["duplicate"] = outcome.duplicate
    body["fingerprint_sha256"] = colon_fingerprint(outcome.submission.sha256)
    return jsonify(body), 200 if outcome.duplicate else 201


@bp.post("/s/<token>/window")
@limited
def propose_window(token: str) -> Rendered:
    """The partner proposes a change window."""
    link = _open(token)
    form = WindowForm()
    if form.validate_on_submit():
        start = _window_start(form.date.data, form.time.data, form, zone_field="timezone")
        if start:
            try:
                windows.propose_window(
                    db.session,
                    _actor(link),
                    link,
                    starts_at=start,
                    timezone=form.timezone.data or default_timezone(),
                    contact_name=form.contact_name.data,
                    contact_email=form.contact_email.data,
                    now=request_now(),
                )
            except ServiceError as error:
                attach_error(form, error)
            else:
                return redirect(url_for("partner.link_page", token=token) + "#window")
        elif start is None:
            form.date.errors = [_("Give a date and a time.")]
    return _render_page(link, token, window_form=form, status=422)


@bp.post("/s/<token>/window/<id:window_id>/accept")
@limited
def accept_window(token: str, window_id: int) -> Rendered:
    """The partner accepts the window we proposed."""
    link = _open(token)
    if not AcknowledgeForm().validate_on_submit():  # CSRF only
        abort(400)
    try:
        window = windows.get_window(db.session, link.partner_id, window_id)
        windows.accept_window(db.session, _actor(link), window, by_partner=True, now=request_now())
    except ServiceError as error:
        # This route's own answer: whatever stops the acceptance (no such window, no longer
        # open, their own proposal) conflicts with the window the page showed them.
        return _render_page(link, token, page_error=error.message, error_at="window", status=409)
    return redirect(url_for("partner.link_page", token=token) + "#window")


@bp.get("/s/<token>/window.ics")
@limited
def window_calendar(token: str) -> Response:
    """The change window as a calendar invitation."""
    link = _open(token)
    window = pages.of_this_exchange(windows.latest_window(db.session, link.partner), link)
    if window is None:
        abort(404)
    content = windows.window_ics(
        window, link.partner, host=urls.host_name(), now=request_now(),
        uid=invitations.uid_for_link(db.session, link),
    )  # fmt: skip
    response = Response(content, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="as2-change-window.ics"'
    return response


@bp.post("/s/<token>/acknowledge")
@limited
def acknowledge(token: str) -> Rendered:
    """The partner confirms they installed our certificate."""
    link = _open(token)
    if not link.can_download:
        abort(404)  # this link never showed our certificate
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        return _render_page(link, token, ack_form=form, status=422)
    shown = links.certificates_for_partner(
        db.session, link.partner, now=request_now(), overlap=settings().certificate_overlap
    )
    newest = shown[-1].certificate if shown else None
    acknowledgements.acknowledge(
        db.session,
        _actor(link),
        link,
        certificate=newest,
        installed_on=form.installed_on.data,
        contact_name=form.contact_name.data,
        now=request_now(),
    )
    return redirect(url_for("partner.link_page", token=token, acknowledged=1) + "#installed")


def _form_certificate(form: UploadForm) -> bytes | None:
    """The bytes to check: a file, pasted text, or the file carried from step 1."""
    storage = form.certificate.data
    if storage is not None and getattr(storage, "filename", ""):
        return bytes(storage.read(MAX_INPUT_BYTES + 1))
    if form.pasted.data and form.pasted.data.strip():
        return form.pasted.data.encode("utf-8", errors="replace")
    if form.carried.data:
        try:
            return base64.b64decode(form.carried.data, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _window_start(
    day: object, time_of_day: object, form: object, zone_field: str = "window_timezone"
) -> datetime | bool | None:
    """The proposed window as UTC; None when not given; False after marking a field error."""
    if day is None and time_of_day is None:
        return None
    zone_name = getattr(form, zone_field).data or default_timezone()
    if day is None or time_of_day is None or not is_valid_timezone(zone_name):
        getattr(form, zone_field).errors = [_("Give a date, a time and a time zone.")]
        return False
    start = local_to_utc(day, time_of_day, zone_name)  # type: ignore[arg-type]
    if start is None:
        getattr(form, zone_field).errors = [_("Propose a time in the future.")]
        return False
    try:
        windows.check_window_time(start, request_now())
    except ServiceError as error:
        getattr(form, zone_field).errors = [error.message]
        return False
    return start


def _render_page(
    link: ShareLink,
    token: str,
    *,
    upload_form: UploadForm | None = None,
    window_form: WindowForm | None = None,
    ack_form: AcknowledgeForm | None = None,
    outcome: Outcome | None = None,
    too_large: bool = False,
    page_error: str | None = None,
    error_at: str | None = None,
    status: int = 200,
    loaded: links.PageLoad | None = None,
) -> tuple[str, int]:
    """The link page, with a refused form, an upload's report or an error shown on it."""
    partner = link.partner
    if upload_form is not None:
        # Never echo pasted text back: it may be a private key the partner should not send.
        upload_form.pasted.data = ""
    page = render_template(
        "partner/link.html",
        upload_form=upload_form or UploadForm(window_timezone=partner.timezone),
        window_form=window_form or WindowForm(timezone=partner.timezone),
        ack_form=ack_form or AcknowledgeForm(),
        outcome=outcome,
        too_large=too_large,
        page_error=page_error,
        # The section a refusal is shown in (where the form's fragment lands), if the page
        # has that section (a download-only link has no upload section); else the top.
        error_at=error_at if page_error and (error_at != "upload" or link.can_upload) else None,
        **pages.link_page_context(link, token, request_now(), loaded),
    )
    return page, status
