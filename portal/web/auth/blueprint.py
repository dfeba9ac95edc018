"""The auth blueprint object; its views attach to it."""

from __future__ import annotations

from flask import Blueprint

from portal.services.errors import ServiceError
from portal.web.errors import service_error

bp = Blueprint("auth", __name__)

# A refusal the views leave unhandled is the error page for its status.
bp.register_error_handler(ServiceError, service_error)
