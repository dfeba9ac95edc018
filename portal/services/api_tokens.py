"""API tokens: named credentials with scopes, for programs calling the portal's API.

A token is `cep_` and a random secret. It is shown once, when it is made; the database
keeps only its SHA-256, so checking one is a single look-up by hash. Revoked tokens stay
listed (their name stays taken). Using a token records when it was last used, at most
once a minute, so that reads through the API seldom take SQLite's write lock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain.scopes import Scope
from portal.domain.vocab import values_of
from portal.models import ApiToken
from portal.services import audit
from portal.services.actor import Actor
from portal.services.errors import (
    ConflictError,
    ForbiddenError,
    NotAuthenticatedError,
    NotFoundError,
    ServiceError,
)
from portal.services.pagination import Page, paginate
from portal.services.unique import add_or_conflict

PREFIX = "cep_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Using a token records the time only when the stored one is older than this.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class NewToken:
    """A token just made: its row and its secret, which is never shown again."""

    token: ApiToken
    secret: str


def token_hash(secret: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(values: Iterable[str]) -> list[str]:
    """Known scope values, sorted and without repeats; ServiceError for none or unknown ones."""
    wanted = {value.strip() for value in values if value.strip()}
    if not wanted:
        raise ServiceError("Choose at least one scope.", field="scopes")
    unknown = wanted - set(values_of(Scope))
    if unknown:
        raise ServiceError(
            f"Unknown scope {', '.join(sorted(unknown))}; use {', '.join(values_of(Scope))}.",
            field="scopes",
        )
    return sorted(wanted)


def create(
    session: Session, actor: Actor, name: str, scopes: Iterable[str], *, now: datetime
) -> NewToken:
    """Make a token NAME with SCOPES; the secret is in the answer and nowhere else."""
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise ServiceError(
            "A token's name is 1 to 64 letters, digits, '-', '_' or '.'.", field="name"
        )
    scope_values = parse_scopes(scopes)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise ConflictError(f"A token named {name} exists already.", field="name")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        scopes=scope_values,
        token_hash=token_hash(secret),
        created_at=now,
        created_by_id=actor.user_id,
    )
    add_or_conflict(session, token, f"A token named {name} exists already.", field="name")
    audit.record(
        session,
        actor,
        "token.created",
        object_type="api_token",
        object_id=token.id,
        summary=f"Created API token {name} ({', '.join(scope_values)})",
        details={"name": name, "scopes": scope_values},
    )
    return NewToken(token, secret)


def list_tokens(session: Session, *, page: int, per_page: int) -> Page[ApiToken]:
    """Every token, revoked ones included, by name."""
    stmt = select(ApiToken).order_by(ApiToken.name, ApiToken.id)
    return paginate(session, stmt, page=page, per_page=per_page)


def get_token(session: Session, token_id: int) -> ApiToken:
    """The token with TOKEN_ID; NotFoundError when there is none."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError("No such API token.")
    return token


def find_by_name(session: Session, name: str) -> ApiToken:
    """The token named NAME; NotFoundError when there is none."""
    token = session.scalar(select(ApiToken).where(ApiToken.name == name.strip()))
    if token is None:
        raise NotFoundError(f"No API token named {name.strip()}.")
    return token


def revoke(session: Session, actor: Actor, name: str, *, now: datetime) -> ApiToken:
    """Stop the token NAME from working; ConflictError when it was revoked already."""
    token = find_by_name(session, name)
    if token.revoked_at is not None:
        raise ConflictError(f"The API token {token.name} was revoked already.")
    token.revoked_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "token.revoked",
        object_type="api_token",
        object_id=token.id,
        summary=f"Revoked API token {token.name}",
        details={"name": token.name},
    )
    return token


def authenticate(
    session: Session, presented: str | None, scope: Scope, *, now: datetime
) -> ApiToken:
    """The token PRESENTED names, if it works and grants SCOPE; records its use.

    NotAuthenticatedError (401) when nothing was presented or the token is unknown or
    revoked; ForbiddenError (403) when it lacks SCOPE. The time of use is written only
    when the stored one is missing or older than a minute.
    """
    if not presented:
        raise NotAuthenticatedError("An API token is required.")
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(presented)))
    if token is None or token.revoked_at is not None:
        raise NotAuthenticatedError("The API token is unknown or revoked.")
    if scope.value not in token.scopes:
        raise ForbiddenError(f"The API token does not grant {scope.value}.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.flush()
    return token


def is_active(token: ApiToken) -> bool:
    """Whether TOKEN still works."""
    return token.revoked_at is None
