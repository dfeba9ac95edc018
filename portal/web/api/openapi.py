"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of /api/v1 (no token needed).

The description is the checked-in `openapi.json` beside this module, served as it is;
tests/test_openapi.py checks it against every /api/v1 route and runs schemathesis on it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from flask import Response

from portal.web.api.blueprint import bp


@cache
def description() -> bytes:
    """The document's bytes, read from the package once."""
    return files("portal.web.api").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document describing this API."""
    return Response(description(), mimetype="application/json")
