"""A staff session ends on the server: a cookie copied before sign-out, or replayed past the
session's lifetime, no longer opens anything."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.models import AuditEvent, StaffSession
from portal.timeutil import utcnow
from tests.conftest import TEST_PASSWORD


def sign_in(app, email: str, password: str = TEST_PASSWORD):
    browser = app.test_client()
    response = browser.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def copy_of(app, browser):
    """A second browser holding a copy of BROWSER's session cookie (what an attacker keeps)."""
    cookie = browser.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def is_signed_in(browser) -> bool:
    return browser.get("/").status_code == 200


def test_cookie_copied_before_logout_stops_working_after_it(app, make_user) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    thief = copy_of(app, browser)
    assert is_signed_in(thief)
    assert browser.post("/logout").status_code == 302
    assert not is_signed_in(browser)
    assert not is_signed_in(thief)


def test_replayed_cookie_does_not_outlive_the_session_lifetime(app, make_user, clock) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    thief = copy_of(app, browser)
    lifetime = app.permanent_session_lifetime
    start = utcnow()
    # Replays just inside the lifetime work (and refresh the cookie), each within the idle
    # timeout of the one before ...
    moment = start
    while moment < start + lifetime - timedelta(minutes=25):
        moment += timedelta(minutes=25)
        clock.set(moment)
        assert is_signed_in(thief)
    clock.set(start + lifetime - timedelta(minutes=1))
    assert is_signed_in(thief)
    # ... but the server's end stays where sign-in put it.
    clock.set(utcnow() + lifetime + timedelta(seconds=1))
    assert not is_signed_in(thief)
    assert not is_signed_in(browser)


def test_logout_ends_the_server_session_and_is_audited(app, session, make_user) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    browser.post("/logout")
    rows = list(session.scalars(select(StaffSession).where(StaffSession.user_id == user.id)))
    assert len(rows) == 1
    assert rows[0].ended_at is not None
    assert rows[0].ended_reason == "signed_out"
    actions = set(
        session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(user.id)))
    )
    assert {"auth.login_succeeded", "user.logout"} <= actions


def test_password_change_ends_the_other_sessions_but_not_this_one(app, make_user) -> None:
    user = make_user("viewer")
    here = sign_in(app, user.email)
    elsewhere = sign_in(app, user.email)
    response = here.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)


def test_disabling_a_user_ends_their_sessions(app, admin_client, make_user) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    response = admin_client.post(
        f"/users/{user.id}/edit", data={"role": "viewer", "timezone": "UTC"}
    )  # is_enabled unticked
    assert response.status_code == 302, response.get_data(as_text=True)
    assert not is_signed_in(browser)


def test_session_id_is_stored_only_as_a_hash(app, session, make_user) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    with browser.session_transaction() as flask_session:
        token = flask_session["sid"]
    stored = session.scalars(select(StaffSession.token_hash)).all()
    assert token not in stored
    assert all(len(value) == 64 for value in stored)
