"""API routes. For now one: who the token is (to check a token end to end)."""

from __future__ import annotations

from typing import Any

from portal.domain.scopes import Scope
from portal.web.api.bearer import current_token, require_token
from portal.web.api.blueprint import bp


@bp.get("/whoami")
@require_token(Scope.CONFIG_READ)
def whoami() -> dict[str, Any]:
    """The token's name and scopes."""
    token = current_token()
    return {"token": token.name, "scopes": list(token.scopes)}
