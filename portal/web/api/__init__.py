"""The JSON API for programs, authenticated by API tokens (`Authorization: Bearer`).

Layout: `blueprint` holds the Blueprint and its JSON error answers, `bearer` the
`require_token(scope)` check, `views` the routes.
"""

from portal.web.api import config, keystore, views  # noqa: F401  (importing registers the routes)
from portal.web.api.blueprint import bp

__all__ = ["bp"]
