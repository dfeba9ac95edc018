"""Internal pages for staff: overview, identities, partners, users, audit."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from portal.web.staff import (  # noqa: E402,F401  (importing registers the routes)
    certificates,
    links,
    outbox,
    review,
    views,
    windows,
)
