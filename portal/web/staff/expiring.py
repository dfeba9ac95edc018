"""The expiring list: every certificate in force expiring soon, filtered and keyset-paged."""

from __future__ import annotations

from flask import abort, render_template, request

from portal.clock import request_now
from portal.domain.reports import DASHBOARD_BUCKETS
from portal.domain.roles import Permission
from portal.extensions import db
from portal.services import expiring
from portal.settings import settings
from portal.web.access import requires
from portal.web.staff.blueprint import bp
from portal.web.staff.pages import Rendered


@bp.get("/expiring")
@requires(Permission.VIEW)
def expiring_list() -> Rendered:
    """Certificates in force expiring within ?within= days (expired ones included), by
    ?owner= (identity, partner) and ?replacement= (scheduled, none), soonest first."""
    args = request.args
    try:
        where = expiring.parse_filter(
            args.get("within"), args.get("owner"), args.get("replacement")
        )
        after = expiring.Cursor.decode(args["after"]) if args.get("after") else None
    except ValueError as error:
        abort(400, description=str(error))
    page = expiring.page(
        db.session, now=request_now(), where=where, per_page=settings().page_size, after=after
    )
    return render_template(
        "staff/expiring.html",
        page=page,
        where=where,
        after=after,
        choices=(0, *DASHBOARD_BUCKETS),
    )
