"""GET /api/v1/config: the certificates in force, for AS2 engines that poll with an ETag."""

from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, request

from portal.clock import request_now
from portal.domain.scopes import Scope
from portal.domain.vocab import Environment, values_of
from portal.extensions import db
from portal.services import config_cache, config_export
from portal.services.errors import BadRequestError
from portal.settings import settings
from portal.timeutil import parse_moment
from portal.web.api.bearer import require_token
from portal.web.api.blueprint import bp

CACHE_KEY = "portal.config_cache"


@bp.get("/config")
@require_token(Scope.CONFIG_READ)
def config() -> Response:
    """The config document at now (or ?at=), filtered by ?identity=, ?partner=, ?environment=.

    Answered from this process's cache while the database's revision stays the same and no
    activation or overlap end passes (portal/services/config_cache.py).
    """
    at = _moment()
    cache = _cache()
    answer = cache.plan(
        db.session, at=at, overlap=settings().certificate_overlap, selection=_selection()
    )
    if request.if_none_match.contains(answer.version):
        # The engine has this answer already: skip loading and writing the certificates.
        unchanged = Response(status=304)
        unchanged.set_etag(answer.version)
        return unchanged
    response = Response(cache.body(db.session, answer, at), mimetype="application/json")
    response.set_etag(answer.version)
    return response


def _cache() -> config_cache.ConfigCache:
    """This app's cache (one per process and app: tests build an app per test)."""
    cache = current_app.extensions.get(CACHE_KEY)
    if cache is None:
        cache = current_app.extensions.setdefault(CACHE_KEY, config_cache.ConfigCache())
    return cache  # type: ignore[no-any-return]


def _moment() -> datetime:
    now = request_now()
    text = request.args.get("at")
    if text is None:
        return now
    try:
        return parse_moment(text, now)
    except ValueError as error:
        raise BadRequestError(str(error)) from None


def _selection() -> config_export.Selection:
    environment = request.args.get("environment")
    if environment is not None and environment not in values_of(Environment):
        raise BadRequestError(f"environment must be one of: {', '.join(values_of(Environment))}.")
    return config_export.Selection(
        identity=request.args.get("identity"),
        partner=request.args.get("partner"),
        environment=environment,
    )
