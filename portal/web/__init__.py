"""The faces of the portal: blueprints, error pages, security headers, template helpers."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, Response, abort, current_app, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from portal.clock import request_now
from portal.domain.certs import MAX_INPUT_BYTES, colon_fingerprint
from portal.domain.roles import Permission
from portal.domain.vocab import SubmissionStatus, WindowProposer, WindowStatus, usage_words
from portal.timeutil import format_in_zone
from portal.web.access import can
from portal.web.api import bp as api_bp
from portal.web.auth import bp as auth_bp
from portal.web.errors import csrf_error, http_error
from portal.web.health import bp as health_bp
from portal.web.partner import bp as partner_bp
from portal.web.staff import bp as staff_bp

# Pages load nothing from another origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class IdConverter(IntegerConverter):
    """Positive ids that fit the database's INTEGER: larger ones are a 404, not a 500."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=2**31 - 1)


def register_id_converter(app: Flask) -> None:
    """Make <id:name> available to routes (before blueprints are registered)."""
    app.url_map.converters["id"] = IdConverter


# The largest body a partner upload may send: room for the form fields around a certificate
# of MAX_INPUT_BYTES in a multipart body. Larger requests are refused with 413 unread.
UPLOAD_REQUEST_LIMIT = 3 * MAX_INPUT_BYTES
UPLOAD_ENDPOINTS = ("partner.upload", "partner.machine_upload")


def limit_partner_uploads() -> None:
    """Cap request bodies before anything (the CSRF check, a view) reads one.

    Partner uploads get UPLOAD_REQUEST_LIMIT (the only place it is set: the upload views rely
    on it), every other route MAX_CONTENT_LENGTH. A declared Content-Length over the limit is
    refused with 413 at once, even on a route that never reads its body (sign-out, the API
    before its token check); a chunked body is cut off at the limit as it is read.
    """
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = UPLOAD_REQUEST_LIMIT
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)


def register_web(app: Flask) -> None:
    """Attach blueprints, error handlers, headers and template helpers to APP."""
    app.register_blueprint(auth_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(partner_bp)
    app.register_blueprint(api_bp)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
    # A service's refusal (portal.services.errors) is handled by each blueprint.
    app.after_request(_security_headers)
    app.add_template_filter(_localtime, "localtime")
    app.add_template_filter(colon_fingerprint, "fingerprint")
    app.add_template_filter(usage_words, "usage_label")
    app.add_template_global(can, "can")
    app.add_template_filter(format_in_zone, "in_zone")
    app.context_processor(lambda: {"now": request_now()})
    app.add_template_global(Permission, "Permission")
    # The states templates compare with, so no template spells a status itself.
    for vocabulary in (SubmissionStatus, WindowStatus, WindowProposer):
        app.add_template_global(vocabulary, vocabulary.__name__)


def _localtime(moment: object) -> str:
    """Show a time in the signed-in user's zone with UTC beside it."""
    if not isinstance(moment, datetime):
        return "—"
    zone = getattr(current_user, "timezone", None) or "UTC"
    return format_in_zone(moment, zone)


def _security_headers(response: Response) -> Response:
    """Headers on every answer: CSP and friends, HSTS over HTTPS, no-store but on static files.

    no-store is the default for every answer (staff pages, link pages and downloads, /login,
    the API, error pages); a view that sets its own Cache-Control keeps it (the partner page's
    time-zone list), and static files keep Flask's caching.
    """
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    hsts = current_app.config["HSTS_SECONDS"]
    if hsts and _served_over_https():
        response.headers.setdefault(
            "Strict-Transport-Security", f"max-age={hsts}; includeSubDomains"
        )
    return response


def _served_over_https() -> bool:
    """HTTPS as the browser sees it: the request itself (X-Forwarded-Proto is honoured only
    with PORTAL_TRUSTED_PROXIES) or an https PORTAL_BASE_URL (a proxy terminates TLS)."""
    base_url = str(current_app.config.get("BASE_URL") or "")
    return request.is_secure or base_url.startswith("https://")
