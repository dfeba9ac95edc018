"""`require_token(scope)`: let a request through only with a working API token for SCOPE."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from portal.clock import request_now
from portal.domain.scopes import Scope
from portal.extensions import db
from portal.models import ApiToken
from portal.services import api_tokens

F = TypeVar("F", bound=Callable[..., Any])


def presented_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_token(scope: Scope) -> Callable[[F], F]:
    """Refuse with 401 (no, unknown or revoked token) or 403 (no SCOPE); else run the view.

    The token's row is in `g.api_token` for the view.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.api_token = api_tokens.authenticate(
                db.session, presented_token(), scope, now=request_now()
            )
            return view(*args, **kwargs)

        guarded.required_scope = scope  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def current_token() -> ApiToken:
    """The token the request was let through with."""
    token: ApiToken = g.api_token
    return token
