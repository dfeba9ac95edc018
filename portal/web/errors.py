"""How an error reads: the error page (staff or partner layout) or a JSON body.

The app registers the HTTP and CSRF handlers; each blueprint registers
`service_error` (or its own variant) for the refusals its views leave unhandled, and
the refusal's class says the status (portal.services.errors).
"""

from __future__ import annotations

from contextlib import suppress

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, default_exceptions

from portal.extensions import db
from portal.services.errors import ServiceError
from portal.settings import settings

MESSAGES = {
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


def service_error(error: ServiceError) -> tuple[str, int] | HTTPException:
    """A refusal no view turned into a form error: the error page for its HTTP status."""
    return http_error(default_exceptions[error.http_status]())


def http_error(error: HTTPException) -> tuple[str, int, list[tuple[str, str]]] | HTTPException:
    """The error page, or a JSON body for clients that ask for JSON; redirects pass.

    The API's paths always answer JSON, routing errors (no such address, a method the
    address does not take) included, which the API blueprint's own handler never sees.
    The exception's headers are kept: a 405 lists the methods allowed (`Allow`, RFC 9110).
    """
    code = error.code or 500
    if code < 400:
        return error
    title, message = MESSAGES.get(code, (error.name, error.description or ""))
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    wants_json = request.accept_mimetypes.best == "application/json"
    if wants_json or request.endpoint == "partner.machine_upload" or _api_path():
        return {"error": title, "message": message}, code, headers  # type: ignore[return-value]
    return (*error_page(code, title, message), headers)


def _api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def csrf_error(_error: CSRFError) -> tuple[str, int]:
    """A missing or stale CSRF token: 400 with what to do about it."""
    message = (
        "This form has expired or was sent from somewhere else. "
        "Go back, reload the page and try again."
    )
    return error_page(400, "Form expired", message)


def error_page(code: int, title: str, message: str) -> tuple[str, int]:
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
        contact_email=settings().contact_email,
    ), code
