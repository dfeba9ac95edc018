"""Sign-in, sign-out, CSRF, session renewal, safe redirects, one-time passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.services import users
from portal.web.auth.views import LOGIN_FAILED, safe_next
from tests.conftest import TEST_PASSWORD, test_settings


def sign_in(client, email: str, password: str, next_url: str = ""):
    return client.post("/login", data={"email": email, "password": password, "next": next_url})


def test_login_page_renders(client) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_login_with_right_password_goes_to_overview(client, make_user) -> None:
    user = make_user("viewer")
    response = sign_in(client, user.email, TEST_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_email_is_case_insensitive(client, make_user) -> None:
    user = make_user("viewer")
    assert sign_in(client, user.email.upper(), TEST_PASSWORD).status_code == 302


def test_wrong_password_and_unknown_email_look_the_same(client, make_user) -> None:
    user = make_user("viewer")
    wrong = sign_in(client, user.email, "not the password")
    unknown = sign_in(client, "nobody@example.com", TEST_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert LOGIN_FAILED.encode() in wrong.data
    assert LOGIN_FAILED.encode() in unknown.data


def test_unknown_email_costs_a_password_verification_too(
    client, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same timing means the same work: one argon2 verification in both cases.
    from argon2 import PasswordHasher, profiles

    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            calls.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", CountingHasher.from_parameters(profiles.CHEAPEST))
    user = make_user("viewer")
    sign_in(client, user.email, "wrong password!")
    sign_in(client, "nobody@example.com", "wrong password!")
    assert len(calls) == 2
    assert calls[1] == users._DUMMY_HASH


def test_disabled_user_cannot_sign_in(client, make_user, session) -> None:
    user = make_user("admin")
    user.is_enabled = False
    session.flush()
    response = sign_in(client, user.email, TEST_PASSWORD)
    assert response.status_code == 401
    assert LOGIN_FAILED.encode() in response.data


def test_disabling_a_user_ends_their_sessions(login, make_user, session) -> None:
    user = make_user("viewer")
    browser = login(user)
    assert browser.get("/").status_code == 200
    admin = make_user("admin")
    from portal.services.actor import Actor

    users.update_user(
        session, Actor.for_user(admin), user, role="viewer", is_enabled=False, timezone="UTC"
    )
    session.flush()
    response = browser.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_missing_fields_rerender_with_field_errors(client) -> None:
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 422
    assert b"Please fill in this field." in response.data


def test_session_is_renewed_at_login(client, make_user) -> None:
    user = make_user("viewer")
    with client.session_transaction() as flask_session:
        flask_session["planted"] = "by an attacker"
    sign_in(client, user.email, TEST_PASSWORD)
    with client.session_transaction() as flask_session:
        assert "planted" not in flask_session
        assert flask_session["_user_id"] == user.get_id()


def test_logout_needs_post_and_signs_out(login, make_user) -> None:
    browser = login(make_user("viewer"))
    assert browser.get("/logout").status_code == 405
    response = browser.post("/logout")
    assert response.status_code == 302
    assert browser.get("/").status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/partners?q=x", "/partners?q=x"),
        ("/identities", "/identities"),
        ("https://evil.example/", None),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("", None),
        ("//evil.example", None),
        ("https://evil", None),
        ("/\\evil", None),
        ("%2F%2Fevil", None),
        ("/%2F%2Fevil.example", None),
        ("/%5Cevil.example", None),
        ("/%252F%252Fevil.example", None),
        ("/\t/evil.example", None),
        ("/\n/evil.example", None),
        ("http:/evil.example", None),
        ("evil.example", None),
        ("/users?q=a%20b", "/users?q=a%20b"),
    ],
)
def test_safe_next(target: str, expected: str | None) -> None:
    assert safe_next(target) == expected


def test_login_follows_a_safe_next_only(client, make_user) -> None:
    user = make_user("viewer")
    response = sign_in(client, user.email, TEST_PASSWORD, next_url="/partners")
    assert response.headers["Location"] == "/partners"
    client.post("/logout")
    response = sign_in(client, user.email, TEST_PASSWORD, next_url="https://evil.example/")
    assert response.headers["Location"] == "/"


def test_protected_page_redirects_to_login_with_next(client) -> None:
    response = client.get("/partners")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_one_time_password_must_be_changed_first(client, session) -> None:
    from portal.services.actor import Actor

    user, password = users.create_user(
        session, Actor("tests"), email="new@example.com", role="operator"
    )
    assert password is not None
    response = sign_in(client, user.email, password)
    assert response.headers["Location"] == "/account/password"
    assert client.get("/partners").headers["Location"] == "/account/password"
    response = client.post(
        "/account/password",
        data={"current_password": password, "new_password": "short", "confirm": "short"},
    )
    assert response.status_code == 422
    assert b"at least 12 characters" in response.data
    new = "a much longer passphrase"
    response = client.post(
        "/account/password",
        data={"current_password": password, "new_password": new, "confirm": new},
    )
    assert response.status_code == 302
    assert client.get("/partners").status_code == 200
    assert users.authenticate(session, user.email, new) is not None


def test_change_password_refuses_wrong_current_password(login, make_user) -> None:
    browser = login(make_user("viewer"))
    new = "another long passphrase"
    response = browser.post(
        "/account/password",
        data={"current_password": "wrong", "new_password": new, "confirm": new},
    )
    assert response.status_code == 422
    assert b"current password is wrong" in response.data


@pytest.fixture
def csrf_app(tmp_path: Path, database_url, connection) -> Flask:
    """The app with CSRF protection on, as in production."""
    app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


def test_login_without_csrf_token_is_refused(csrf_app: Flask, make_user) -> None:
    user = make_user("viewer")
    client = csrf_app.test_client()
    response = sign_in(client, user.email, TEST_PASSWORD)
    assert response.status_code == 400
    assert b"form has expired" in response.data


def test_login_with_csrf_token_works(csrf_app: Flask, make_user) -> None:
    import re

    user = make_user("viewer")
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    response = client.post(
        "/login",
        data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302


def test_staff_form_without_csrf_token_is_refused(csrf_app: Flask, make_user) -> None:
    user = make_user("admin")
    client = csrf_app.test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
    response = client.post("/identities/new", data={"name": "X", "as2_id": "X"})
    assert response.status_code == 400
    response = client.post("/logout")
    assert response.status_code == 400


def test_pages_carry_security_headers(client) -> None:
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "hostile",
    ["//evil.example", "https://evil", "/\\evil", "%2F%2Fevil", "/%2F%2Fevil", "/\t/evil"],
)
def test_login_never_redirects_off_site(client, make_user, hostile: str) -> None:
    user = make_user("viewer")
    response = sign_in(client, user.email, TEST_PASSWORD, next_url=hostile)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
