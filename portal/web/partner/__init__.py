"""Pages a trading partner reaches through a share link, without an account."""

from flask import Blueprint

bp = Blueprint("partner", __name__)

from portal.web.partner import views  # noqa: E402,F401  (registers the routes on bp)
