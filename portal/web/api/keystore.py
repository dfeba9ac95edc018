"""`POST /api/v1/identities/<as2_id>/keystore` (scope keys:export): our keys as PKCS#12.

The JSON body names the passphrase and either a certificate's SHA-256 or `which`
(active, previous, scheduled, accept) with an optional `usage`; optionally `environment`,
`at` (ISO 8601, default: the request's time) and `legacy` (3DES instead of AES-256). Input
the API refuses answers 400 with a JSON error; an AS2 ID or a choice that names nothing, 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, request

from portal.clock import request_now
from portal.domain.scopes import Scope
from portal.domain.vocab import Environment, values_of
from portal.extensions import db, keyring
from portal.services import directory, keystores
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.timeutil import parse_moment
from portal.web.api.bearer import current_token, require_token
from portal.web.api.blueprint import bp

TEXT_FIELDS = ("passphrase", "certificate", "which", "usage", "environment", "at")
FIELDS = frozenset({*TEXT_FIELDS, "legacy"})


class BadInputError(ServiceError):
    """The request's input is refused: 400 in this API."""

    http_status = 400


@dataclass(frozen=True)
class KeystoreRequest:
    """The body of a keystore request, its types checked."""

    passphrase: str
    selection: keystores.Selection
    environment: str | None
    legacy: bool


@bp.post("/identities/<as2_id>/keystore")
@require_token(Scope.KEYS_EXPORT)
def identity_keystore(as2_id: str) -> Response:
    """Our keys (with certificates and chains) as PKCS#12 under the passphrase given."""
    wanted = _read_request()
    token = current_token()
    actor = Actor.api_token(token.name, request.remote_addr, request.user_agent.string)
    try:
        identity = directory.find_identity(db.session, as2_id, wanted.environment)
        exported = keystores.export(
            db.session,
            actor,
            keyring(),
            identity,
            wanted.selection,
            passphrase=wanted.passphrase,
            legacy=wanted.legacy,
            overlap=settings().certificate_overlap,
        )
    except ServiceError as error:
        # A refusal of the input (no more particular status) is a bad request here.
        if type(error) is ServiceError:
            raise BadInputError(error.message, field=error.field) from None
        raise
    response = Response(exported.data, mimetype="application/x-pkcs12")
    response.headers["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    return response


def _read_request() -> KeystoreRequest:
    """The JSON body as a KeystoreRequest; BadInputError for anything else."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise BadInputError('Send a JSON object such as {"passphrase": "...", "which": "accept"}.')
    unknown = sorted(str(name)[:40] for name in body if name not in FIELDS)
    if unknown:
        raise BadInputError(f"Unknown field {', '.join(unknown)}; use {', '.join(sorted(FIELDS))}.")
    text = {name: _text(body, name) for name in TEXT_FIELDS}
    legacy = body.get("legacy")
    if legacy is not None and not isinstance(legacy, bool):
        raise BadInputError("legacy must be true or false.", field="legacy")
    if text["passphrase"] is None:
        raise BadInputError("passphrase is required.", field="passphrase")
    environment = text["environment"]
    if environment is not None and environment not in values_of(Environment):
        raise BadInputError(
            f"environment must be {' or '.join(values_of(Environment))}.", field="environment"
        )
    selection = keystores.Selection(
        at=_moment(text["at"]),
        certificate=text["certificate"],
        which=text["which"],
        usage=text["usage"],
    )
    return KeystoreRequest(text["passphrase"], selection, environment, bool(legacy))


def _text(body: dict[str, Any], name: str) -> str | None:
    """BODY's string NAME; None when absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadInputError(f"{name} must be a string.", field=name)
    return value


def _moment(text: str | None) -> datetime:
    """The time to answer for: `at`, or the request's time."""
    now = request_now()
    if text is None:
        return now
    try:
        return parse_moment(text, now)
    except ValueError as error:
        raise BadInputError(f"at: {error}", field="at") from None
