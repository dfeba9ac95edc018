"""The partner blueprint object, its response headers and how it answers a refusal."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from portal.domain.partner_progress import read_aloud
from portal.services.errors import ServiceError
from portal.web.errors import service_error
from portal.web.partner.i18n import init_i18n

bp = Blueprint("partner", __name__)
# Flask-Babel comes with the partner pages, the only ones in several languages.
bp.record_once(lambda state: init_i18n(state.app))
# A fingerprint's short form, to compare by phone ('AB12 CD34 … 9F0E 77A1').
bp.add_app_template_filter(read_aloud, "read_aloud")


@bp.after_request
def _partner_headers(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "partner.time_zones":  # the one answer without a token in it
        response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.errorhandler(ServiceError)
def _refused(error: ServiceError) -> tuple[Response, int] | tuple[str, int] | HTTPException:
    """A refusal no view handled: JSON with its message for scripts, the error page otherwise.

    The status is the refusal's own: 403 a download-only link, 409 no uploads left,
    410 expired or revoked, 404 no such thing, 422 anything else.
    """
    if request.endpoint == "partner.machine_upload":  # scripts read JSON, never a page
        return jsonify(error=error.message), error.http_status
    return service_error(error)
