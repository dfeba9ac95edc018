"""The staff blueprint object; route modules attach their views to it."""

from __future__ import annotations

from flask import Blueprint

from portal.services.errors import ServiceError
from portal.web.errors import service_error

bp = Blueprint("staff", __name__)

# Views look things up through the services and turn refusals they expect into form
# errors; any other refusal is the error page for its status ("no such thing": 404).
bp.register_error_handler(ServiceError, service_error)
