"""API tokens: made by admins (page and command), shown once, stored as a hash, revocable."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.domain.scopes import Scope
from portal.models import ApiToken, AuditEvent
from portal.services import api_tokens
from portal.services.errors import (
    ConflictError,
    ForbiddenError,
    NotAuthenticatedError,
    NotFoundError,
    ServiceError,
)
from tests import factories

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TOKEN_RE = re.compile(r"cep_[A-Za-z0-9_-]{40,}")


def make(session: Session, name: str = "erp", scopes: tuple[str, ...] = ("config:read",)):
    return api_tokens.create(session, factories.ACTOR, name, scopes, now=NOW)


def dump(session: Session) -> str:
    """Every column of every api_tokens row and every audit event, as text."""
    rows = session.execute(text("SELECT * FROM api_tokens")).all()
    events = session.execute(text("SELECT * FROM audit_events")).all()
    return repr(rows) + repr(events)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --- the service ---------------------------------------------------------------------


def test_create_stores_only_the_hash_and_audits_without_the_secret(session: Session) -> None:
    made = make(session, scopes=("keys:export", "config:read", "config:read"))

    assert TOKEN_RE.fullmatch(made.secret)
    assert made.token.scopes == ["config:read", "keys:export"]
    assert made.token.token_hash == api_tokens.token_hash(made.secret)
    assert made.secret not in dump(session)
    assert made.secret[4:] not in dump(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "token.created"))
    assert event is not None
    assert event.details["name"] == "erp"


@pytest.mark.parametrize("name", ["", " ", "x" * 65, "has space", "slash/no", "ünï"])
def test_bad_names_are_refused(session: Session, name: str) -> None:
    with pytest.raises(ServiceError) as refused:
        make(session, name=name)
    assert refused.value.field == "name"


@pytest.mark.parametrize("scopes", [(), ("",), ("config:write",), ("config:read", "admin")])
def test_bad_scopes_are_refused(session: Session, scopes: tuple[str, ...]) -> None:
    with pytest.raises(ServiceError) as refused:
        make(session, scopes=scopes)
    assert refused.value.field == "scopes"


def test_names_are_unique_even_after_revocation(session: Session) -> None:
    make(session, name="a-b_c.1")
    api_tokens.revoke(session, factories.ACTOR, "a-b_c.1", now=NOW)
    with pytest.raises(ConflictError):
        make(session, name="a-b_c.1")


def test_revoke_unknown_and_twice(session: Session) -> None:
    with pytest.raises(NotFoundError):
        api_tokens.revoke(session, factories.ACTOR, "nope", now=NOW)
    made = make(session)
    api_tokens.revoke(session, factories.ACTOR, "erp", now=NOW)
    with pytest.raises(ConflictError):
        api_tokens.revoke(session, factories.ACTOR, "erp", now=NOW)
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "api_token")
    )
    assert list(actions) == ["token.created", "token.revoked"]
    assert made.secret not in dump(session)


def test_authenticate(session: Session) -> None:
    made = make(session)
    assert api_tokens.authenticate(session, made.secret, Scope.CONFIG_READ, now=NOW) is made.token
    for presented in (None, "", "cep_wrong", made.secret + "x"):
        with pytest.raises(NotAuthenticatedError):
            api_tokens.authenticate(session, presented, Scope.CONFIG_READ, now=NOW)
    with pytest.raises(ForbiddenError):
        api_tokens.authenticate(session, made.secret, Scope.KEYS_EXPORT, now=NOW)
    api_tokens.revoke(session, factories.ACTOR, "erp", now=NOW)
    with pytest.raises(NotAuthenticatedError):
        api_tokens.authenticate(session, made.secret, Scope.CONFIG_READ, now=NOW)


def test_last_used_is_written_at_most_once_a_minute(session: Session) -> None:
    made = make(session)
    assert made.token.last_used_at is None
    api_tokens.authenticate(session, made.secret, Scope.CONFIG_READ, now=NOW)
    assert made.token.last_used_at == NOW
    api_tokens.authenticate(
        session, made.secret, Scope.CONFIG_READ, now=NOW + timedelta(seconds=59)
    )
    assert made.token.last_used_at == NOW
    later = NOW + timedelta(seconds=60)
    api_tokens.authenticate(session, made.secret, Scope.CONFIG_READ, now=later)
    assert made.token.last_used_at == later


# --- the API face ----------------------------------------------------------------------


def test_whoami_answers_for_a_working_token(client, session: Session) -> None:
    made = make(session, scopes=("config:read", "keys:export"))
    response = client.get("/api/v1/whoami", headers=bearer(made.secret))
    assert response.status_code == 200
    assert response.json == {"token": "erp", "scopes": ["config:read", "keys:export"]}
    assert response.headers["Cache-Control"] == "no-store"


def test_missing_wrong_and_revoked_tokens_are_401(client, session: Session) -> None:
    made = make(session)
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {made.secret}"},
        bearer("cep_not-a-token"),
    ):
        response = client.get("/api/v1/whoami", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.is_json
        assert "error" in response.json
    api_tokens.revoke(session, factories.ACTOR, "erp", now=NOW)
    response = client.get("/api/v1/whoami", headers=bearer(made.secret))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_is_403(client, session: Session) -> None:
    made = make(session, scopes=("keys:export",))
    response = client.get("/api/v1/whoami", headers=bearer(made.secret))
    assert response.status_code == 403
    assert response.is_json


def test_last_used_through_the_api_follows_the_clock(client, session: Session, clock) -> None:
    made = make(session)
    clock.set(NOW)
    assert client.get("/api/v1/whoami", headers=bearer(made.secret)).status_code == 200
    session.expire_all()
    assert session.get(ApiToken, made.token.id).last_used_at == NOW
    clock.advance(timedelta(seconds=30))
    client.get("/api/v1/whoami", headers=bearer(made.secret))
    session.expire_all()
    assert session.get(ApiToken, made.token.id).last_used_at == NOW
    clock.advance(timedelta(seconds=31))
    client.get("/api/v1/whoami", headers=bearer(made.secret))
    session.expire_all()
    assert session.get(ApiToken, made.token.id).last_used_at == NOW + timedelta(seconds=61)


def test_the_token_never_reaches_the_logs(client, session: Session, caplog) -> None:
    made = make(session)
    with caplog.at_level(logging.DEBUG):
        client.get("/api/v1/whoami", headers=bearer(made.secret))
        client.get("/api/v1/whoami", headers=bearer(made.secret + "x"))
    assert made.secret not in caplog.text


# --- the page --------------------------------------------------------------------------


def test_admin_creates_a_token_shown_once(admin_client, session: Session) -> None:
    page = admin_client.get("/tokens")
    assert page.status_code == 200
    assert b"API tokens" in page.data

    response = admin_client.post("/tokens", data={"name": "erp", "scopes": ["config:read"]})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret = TOKEN_RE.search(response.get_data(as_text=True))
    assert secret is not None
    assert secret.group(0) not in dump(session)
    listing = admin_client.get("/tokens").get_data(as_text=True)
    assert "erp" in listing
    assert secret.group(0) not in listing
    assert "never" in listing
    token = session.scalar(select(ApiToken).where(ApiToken.name == "erp"))
    assert token is not None
    assert token.created_by_id is not None


def test_the_page_refuses_bad_input_with_422(admin_client, session: Session) -> None:
    make(session)
    for data in (
        {"name": "erp", "scopes": ["config:read"]},
        {"name": "bad name", "scopes": ["config:read"]},
        {"name": "other", "scopes": []},
    ):
        response = admin_client.post("/tokens", data=data)
        assert response.status_code == 422, data
        assert TOKEN_RE.search(response.get_data(as_text=True)) is None
    assert session.scalar(select(ApiToken).where(ApiToken.name == "other")) is None


def test_admin_revokes_from_the_page(admin_client, client, session: Session) -> None:
    made = make(session)
    response = admin_client.post(f"/tokens/{made.token.id}/revoke")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(ApiToken, made.token.id).revoked_at is not None
    assert client.get("/api/v1/whoami", headers=bearer(made.secret)).status_code == 401
    again = admin_client.post(f"/tokens/{made.token.id}/revoke", follow_redirects=True)
    assert b"revoked already" in again.data


def test_the_menu_shows_tokens_to_admins_only(client_as) -> None:
    assert b'href="/tokens"' in client_as("admin").get("/").data
    assert b'href="/tokens"' not in client_as("operator").get("/").data


# --- the command line ------------------------------------------------------------------


def test_cli_create_list_revoke(runner, session: Session, client) -> None:
    created = runner.invoke(args=["token", "create", "erp", "--scope", "config:read,keys:export"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert TOKEN_RE.fullmatch(secret)
    assert secret not in dump(session)
    assert client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200

    listed = runner.invoke(args=["token", "list", "--json"])
    assert listed.exit_code == 0
    (row,) = json.loads(listed.output)["tokens"]
    assert row["name"] == "erp"
    assert row["scopes"] == ["config:read", "keys:export"]
    assert row["state"] == "active"
    assert row["last_used_at"] is not None
    assert secret not in listed.output
    plain = runner.invoke(args=["token", "list"])
    assert plain.exit_code == 0
    assert "erp" in plain.output

    revoked = runner.invoke(args=["token", "revoke", "erp"])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 401
    assert (
        json.loads(runner.invoke(args=["token", "list", "--json"]).output)["tokens"][0]["state"]
        == "revoked"
    )


def test_cli_refusals_are_exit_1_on_one_line(runner, session: Session) -> None:
    assert runner.invoke(args=["token", "create", "erp", "--scope", "config:read"]).exit_code == 0
    for args in (
        ["token", "create", "erp", "--scope", "config:read"],
        ["token", "create", "bad name", "--scope", "config:read"],
        ["token", "revoke", "nope"],
        ["token", "create", "x", "--scope", "config:read", "--as", "nobody@example.com"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert runner.invoke(args=["token", "revoke", "erp"]).exit_code == 0
    again = runner.invoke(args=["token", "revoke", "erp"])
    assert again.exit_code == 1
    assert "revoked already" in again.output


def test_cli_usage_errors_are_exit_2(runner, session: Session) -> None:
    for args in (
        ["token", "create", "erp"],
        ["token", "create", "erp", "--scope", "config:write"],
        ["token", "create", "erp", "--scope", ","],
        ["token", "create", "--scope", "config:read"],
        ["token", "revoke"],
    ):
        assert runner.invoke(args=args).exit_code == 2, args
    assert session.scalar(select(ApiToken)) is None


def test_cli_as_only_admins(runner, session: Session, make_user) -> None:
    admin = make_user("admin")
    operator = make_user("operator")
    session.commit()
    refused = runner.invoke(
        args=["token", "create", "erp", "--scope", "config:read", "--as", operator.email]
    )
    assert refused.exit_code == 1
    assert "operator" in refused.output
    made = runner.invoke(
        args=["token", "create", "erp", "--scope", "config:read", "--as", admin.email]
    )
    assert made.exit_code == 0, made.output
    token = session.scalar(select(ApiToken).where(ApiToken.name == "erp"))
    assert token is not None
    assert token.created_by_id == admin.id
    assert runner.invoke(args=["token", "revoke", "erp", "--as", operator.email]).exit_code == 1
    assert runner.invoke(args=["token", "revoke", "erp", "--as", admin.email]).exit_code == 0
    actors = session.scalars(
        select(AuditEvent.actor).where(AuditEvent.object_type == "api_token")
    ).all()
    assert actors == [f"{admin.email} (command line)"] * 2
