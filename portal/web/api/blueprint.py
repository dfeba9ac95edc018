"""The API blueprint: JSON only, no cookies, no CSRF (a bearer token is not sent by browsers)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from portal.extensions import csrf
from portal.services.errors import ServiceError

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


def json_error(status: int, message: str) -> Response:
    """An error as JSON; a 401 says how to authenticate (RFC 6750)."""
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return response


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    return json_error(error.http_status, error.message)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return json_error(error.code or 500, error.name)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
