"""Key export, user management, API tokens and webhooks ask for the password again when it
was typed more than PORTAL_REAUTH_MINUTES ago; the confirmation is throttled and audited,
and returns only to a path on this site."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.models import ApiToken, AuditEvent
from portal.timeutil import utcnow
from tests.conftest import TEST_PASSWORD, reconfigure
from tests.test_staff_sessions import sign_in

LATER = timedelta(minutes=16)  # past the 15-minute default, within the 30-minute idle timeout


@pytest.fixture
def admin_browser(app, make_user, clock):
    clock.set(utcnow())
    admin = make_user("admin")
    return sign_in(app, admin.email)


def actions(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.mark.parametrize("path", ["/users", "/users/new", "/tokens", "/webhooks"])
def test_sensitive_pages_open_right_after_sign_in(admin_browser, path: str) -> None:
    assert admin_browser.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/users", "/users/new", "/tokens", "/webhooks"])
def test_sensitive_pages_ask_the_password_again_after_15_minutes(
    admin_browser, clock, path: str
) -> None:
    clock.advance(LATER)
    response = admin_browser.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login/confirm?next={path}"
    assert admin_browser.get("/partners").status_code == 200  # other pages are not asked


def test_the_right_password_goes_back_and_is_audited(admin_browser, session, clock) -> None:
    clock.advance(LATER)
    location = admin_browser.get("/users?q=x").headers["Location"]
    page = admin_browser.get(location)
    assert page.status_code == 200
    assert "Confirm your password" in page.get_data(as_text=True)
    response = admin_browser.post(
        "/login/confirm", data={"password": TEST_PASSWORD, "next": "/users?q=x"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/users?q=x"
    assert admin_browser.get("/users").status_code == 200
    assert len(actions(session, "auth.reauth_succeeded")) == 1
    clock.advance(LATER)  # and 15 minutes after the confirmation, it is asked again
    assert admin_browser.get("/users").status_code == 302


def test_a_wrong_password_is_refused_and_audited(admin_browser, session, clock) -> None:
    clock.advance(LATER)
    response = admin_browser.post(
        "/login/confirm", data={"password": "not my password", "next": "/users"}
    )
    assert response.status_code == 401
    assert "That is not your password." in response.get_data(as_text=True)
    assert [row.details for row in actions(session, "auth.reauth_failed")] == [
        {"reason": "credentials"}
    ]
    assert admin_browser.get("/users").status_code == 302


def test_confirmation_is_throttled_like_sign_in(app, admin_browser, clock) -> None:
    reconfigure(app, RATELIMIT_LOGIN_ACCOUNT="2 per 15 minutes")
    clock.advance(LATER)
    for _ in range(2):
        response = admin_browser.post("/login/confirm", data={"password": "not my password"})
        assert response.status_code == 401
    response = admin_browser.post("/login/confirm", data={"password": TEST_PASSWORD})
    assert response.status_code == 429


@pytest.mark.parametrize(
    "hostile", ["//evil.example", "https://evil", "/\\evil", "%2F%2Fevil", "/%2F%2Fevil"]
)
def test_confirmation_never_redirects_off_site(admin_browser, clock, hostile: str) -> None:
    clock.advance(LATER)
    response = admin_browser.post(
        "/login/confirm", data={"password": TEST_PASSWORD, "next": hostile}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_a_post_is_not_carried_out_but_sent_to_confirm_then_back_to_its_page(
    admin_browser, session, clock
) -> None:
    clock.advance(LATER)
    before = session.scalar(select(func.count()).select_from(ApiToken))
    response = admin_browser.post(
        "/tokens",
        data={"name": "late", "scopes": ["config:read"]},
        headers={"Referer": "http://localhost/tokens"},  # the page that sent it,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/confirm?next=/tokens"
    assert session.scalar(select(func.count()).select_from(ApiToken)) == before
    # A referrer elsewhere is not followed back.
    response = admin_browser.post(
        "/tokens", data={"name": "late"}, headers={"Referer": "https://evil.example/tokens"}
    )
    assert response.headers["Location"] == "/login/confirm?next=/"


def test_key_export_asks_for_the_password_again(admin_browser, session, clock) -> None:
    from portal.extensions import keyring
    from tests import factories

    with admin_browser.application.app_context():
        certificate = factories.identity_certificate(
            session, keyring(), factories.identity(session)
        )
    clock.advance(LATER)
    response = admin_browser.post(
        f"/certificates/{certificate.id}/keystore",
        data={"passphrase": "a long export passphrase", "confirm": "a long export passphrase"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/confirm")


def test_the_reauthentication_window_is_a_setting(app, admin_browser, clock) -> None:
    reconfigure(app, REAUTH_MINUTES=60)
    clock.advance(LATER)
    assert admin_browser.get("/users").status_code == 200


def test_the_confirm_page_needs_a_signed_in_user(client) -> None:
    response = client.get("/login/confirm")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_the_current_password_on_the_change_form_is_throttled_like_sign_in(
    app, admin_browser, clock
) -> None:
    reconfigure(app, RATELIMIT_LOGIN_ACCOUNT="2 per 15 minutes")
    new = "a brand new passphrase 42"
    for _ in range(2):
        response = admin_browser.post(
            "/account/password",
            data={"current_password": "not my password", "new_password": new, "confirm": new},
        )
        assert response.status_code == 422
    right = admin_browser.post(
        "/account/password",
        data={"current_password": TEST_PASSWORD, "new_password": new, "confirm": new},
    )
    assert right.status_code == 429
    assert "Retry-After" in right.headers
