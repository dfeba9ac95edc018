"""Staff sign-in, sign-out and password change."""

from portal.web.auth import two_factor, views  # noqa: F401  (importing registers the routes)
from portal.web.auth.blueprint import bp

__all__ = ["bp"]
