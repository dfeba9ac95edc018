"""The JSON API for programs, authenticated by API tokens (`Authorization: Bearer`).

Layout: `blueprint` holds the Blueprint and its JSON error answers, `bearer` the
`require_token(scope)` check, `views` and `config` the routes, `openapi` the route serving
`openapi.json`, the OpenAPI 3.1 description of every route (kept true by tests/test_openapi.py).
"""

from portal.web.api import config, keystore, openapi, views  # noqa: F401  (importing registers the routes)
from portal.web.api.blueprint import bp

__all__ = ["bp"]
