"""What gunicorn serves in the bench: the real portal, with a bare Flask route at /__bare.

Both run in the same workers, so they see the same machine, the same gunicorn and the
same load; the bare route is the floor a page of the portal is compared with.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from portal import create_app
from portal.bench.serve import BARE_PREFIX

BARE_BODY = "<!doctype html><title>bare</title><p>Hello from a bare Flask route.</p>"


def bare_app() -> Flask:
    """A minimal Flask app answering one small HTML page at its root."""
    bare = Flask("portal_bench_bare")

    @bare.get("/")
    def hello() -> str:
        return BARE_BODY

    return bare


def make_application() -> Flask:
    """create_app() (settings from PORTAL_* as in production) with the bare app mounted."""
    app = create_app()
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {BARE_PREFIX: bare_app()}
    )
    return app
