"""Staff sign-in, sign-out and password change."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from portal.web.auth import views  # noqa: E402,F401  (registers the routes on bp)
