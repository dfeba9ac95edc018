"""Internal pages for staff: overview, identities, partners, users, audit.

Layout: `blueprint` holds the Blueprint object, `forms` the forms, `pages` the page
builders several routes share; each remaining module holds routes and imports none
of the others.
"""

from portal.web.staff import (  # noqa: F401  (importing registers the routes)
    campaigns,
    certificates,
    expiring,
    links,
    outbox,
    review,
    tokens,
    views,
    webhooks,
    windows,
)
from portal.web.staff.blueprint import bp

__all__ = ["bp"]
