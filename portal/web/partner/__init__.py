"""Pages a trading partner reaches through a share link, without an account."""

from portal.web.partner import views  # noqa: F401  (importing registers the routes)
from portal.web.partner.blueprint import bp

__all__ = ["bp"]
