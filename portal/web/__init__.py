"""The faces of the portal: blueprints, error pages, security headers, template helpers."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime

from flask import Flask, Response, current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import IntegerConverter, Map

from portal.domain.roles import Permission
from portal.extensions import db
from portal.services.certificates import colon_fingerprint
from portal.services.errors import NotFoundError
from portal.timeutil import format_in_zone, utcnow
from portal.web.access import can
from portal.web.auth import bp as auth_bp
from portal.web.health import bp as health_bp
from portal.web.partner import bp as partner_bp
from portal.web.partner.views import UPLOAD_REQUEST_LIMIT
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


def limit_partner_uploads() -> None:
    """Cap partner upload bodies before anything (the CSRF check) reads the form."""
    if request.endpoint in ("partner.upload", "partner.machine_upload"):
        request.max_content_length = UPLOAD_REQUEST_LIMIT


def register_web(app: Flask) -> None:
    """Attach blueprints, error handlers, headers and template helpers to APP."""
    app.register_blueprint(auth_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(partner_bp)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    # Views look things up through the services; "no such thing" is a 404 everywhere.
    app.register_error_handler(NotFoundError, _not_found)
    app.after_request(_security_headers)
    app.add_template_filter(_localtime, "localtime")
    app.add_template_filter(colon_fingerprint, "fingerprint")
    app.add_template_filter(_usage_label, "usage_label")
    app.add_template_global(can, "can")
    app.add_template_filter(format_in_zone, "in_zone")
    app.context_processor(lambda: {"now": utcnow()})
    app.add_template_global(Permission, "Permission")


def _localtime(moment: object) -> str:
    """Show a time in the signed-in user's zone with UTC beside it."""
    if not isinstance(moment, datetime):
        return "—"
    zone = getattr(current_user, "timezone", None) or "UTC"
    return format_in_zone(moment, zone)


def _usage_label(usage: str) -> str:
    """How a certificate usage reads in a sentence."""
    return {"both": "signing and encryption"}.get(usage, usage)


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    message = (
        "This form has expired or was sent from somewhere else. "
        "Go back, reload the page and try again."
    )
    return _error_page(400, "Form expired", message)


_MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your role does not allow this. Ask an admin if you need it."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    410: ("Gone", "What was here is no longer available."),
    413: ("Too large", "What you sent is larger than this portal accepts."),
    422: ("Not accepted", "What you sent could not be used. Check it and try again."),
    429: ("Too many requests", "Too many attempts from your address. Wait a minute and try again."),
    500: (
        "Something went wrong",
        "The portal could not finish this request and nothing was changed. "
        "Try again in a moment; if it keeps happening, tell the portal's administrators.",
    ),
}


def _not_found(_error: NotFoundError) -> tuple[str, int] | HTTPException:
    return _http_error(NotFound())


def _http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
    code = error.code or 500
    if code < 400:
        return error
    title, message = _MESSAGES.get(code, (error.name, error.description or ""))
    wants_json = request.accept_mimetypes.best == "application/json"
    if wants_json or request.endpoint == "partner.machine_upload":
        return {"error": title, "message": message}, code  # type: ignore[return-value]
    return _error_page(code, title, message)


def _error_page(code: int, title: str, message: str) -> tuple[str, int]:
    """An HTML error page: the partner layout on link routes, the staff layout elsewhere.

    A server error renders without touching the database (no signed-in user, no
    menu): the database may be what failed.
    """
    partner_facing = request.blueprint == "partner" or request.path.startswith("/s/")
    if code >= 500:
        with suppress(SQLAlchemyError):  # the page must render whatever broke
            db.session.rollback()
    plain = code >= 500 or partner_facing
    return render_template(
        "errors/error.html",
        layout="partner/base.html" if plain else "base.html",
        show_contact=partner_facing,
        code=code,
        title=title,
        message=message,
        contact_email=current_app.config["CONTACT_EMAIL"],
    ), code


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if current_user and current_user.is_authenticated:
        response.headers.setdefault("Cache-Control", "no-store")
    return response
