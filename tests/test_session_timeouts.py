"""Staff sessions end on the server after the idle timeout and the absolute lifetime: a copied
cookie stops working then, and after logout; each end is audited and explained at /login."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, StaffSession
from portal.timeutil import utcnow
from tests.conftest import reconfigure
from tests.test_staff_sessions import copy_of, is_signed_in, sign_in

IDLE = timedelta(minutes=30)


@pytest.fixture(autouse=True)
def real_idle_timeout(app) -> None:
    """The default idle timeout (tests/conftest.py lifts it for the other tests)."""
    reconfigure(app, SESSION_IDLE_MINUTES=30)


def session_row(session, user) -> StaffSession:
    row = session.scalars(select(StaffSession).where(StaffSession.user_id == user.id)).one()
    session.refresh(row)
    return row


def test_a_copied_session_cookie_stops_working_after_the_idle_timeout(
    app, session, make_user, clock
) -> None:
    user = make_user("viewer")
    start = utcnow()
    clock.set(start)
    browser = sign_in(app, user.email)
    thief = copy_of(app, browser)
    clock.set(start + IDLE - timedelta(seconds=1))
    assert is_signed_in(thief)  # just inside: works, and counts as activity
    clock.set(start + 2 * IDLE - timedelta(seconds=2))
    assert is_signed_in(browser)
    clock.set(start + 3 * IDLE)
    assert not is_signed_in(thief)
    assert not is_signed_in(browser)
    row = session_row(session, user)
    assert row.ended_reason == "idle"
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.session_ended")
    ).all()
    assert [event.details for event in events] == [{"reason": "idle"}]


def test_the_idle_end_sends_to_login_with_a_message(app, make_user, clock) -> None:
    user = make_user("viewer")
    clock.set(utcnow())
    browser = sign_in(app, user.email)
    clock.advance(IDLE + timedelta(minutes=1))
    response = browser.get("/partners")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "signed out after 30 minutes without activity" in page


def test_the_idle_timeout_is_a_setting(app, make_user, clock) -> None:
    reconfigure(app, SESSION_IDLE_MINUTES=5)
    user = make_user("viewer")
    clock.set(utcnow())
    browser = sign_in(app, user.email)
    clock.advance(timedelta(minutes=4))
    assert is_signed_in(browser)
    clock.advance(timedelta(minutes=6))
    assert not is_signed_in(browser)


def test_activity_is_written_at_most_once_a_minute(app, session, make_user, clock) -> None:
    user = make_user("viewer")
    start = utcnow()
    clock.set(start)
    browser = sign_in(app, user.email)
    clock.set(start + timedelta(seconds=30))
    assert is_signed_in(browser)
    assert session_row(session, user).last_seen_at == start  # not written: under a minute
    clock.set(start + timedelta(seconds=61))
    assert is_signed_in(browser)
    assert session_row(session, user).last_seen_at == start + timedelta(seconds=61)


def test_a_copied_session_cookie_stops_working_after_the_lifetime(
    app, session, make_user, clock
) -> None:
    reconfigure(app, SESSION_LIFETIME_HOURS=2)
    user = make_user("viewer")
    start = utcnow()
    clock.set(start)
    browser = sign_in(app, user.email)
    thief = copy_of(app, browser)
    for minutes in range(20, 120, 20):  # busy all along: never idle
        clock.set(start + timedelta(minutes=minutes))
        assert is_signed_in(thief)
    clock.set(start + timedelta(hours=2, seconds=1))
    assert not is_signed_in(thief)
    assert not is_signed_in(browser)
    assert session_row(session, user).ended_reason == "expired"
    reasons = session.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "auth.session_ended")
    ).all()
    assert reasons == [{"reason": "expired"}]


def test_a_replayed_cookie_stops_working_after_logout(app, make_user) -> None:
    user = make_user("viewer")
    browser = sign_in(app, user.email)
    thief = copy_of(app, browser)
    assert browser.post("/logout").status_code == 302
    assert not is_signed_in(thief)
    assert thief.get("/users").headers["Location"].startswith("/login")


def test_a_session_opened_before_the_upgrade_counts_from_its_start(
    app, session, make_user, clock
) -> None:
    # Rows from before migration 0019 have no last_seen_at: the start stands in for it.
    user = make_user("viewer")
    start = utcnow()
    clock.set(start)
    browser = sign_in(app, user.email)
    row = session_row(session, user)
    row.last_seen_at = None
    row.authenticated_at = None
    session.flush()
    clock.set(start + IDLE - timedelta(minutes=1))
    assert is_signed_in(browser)
    clock.set(start + 3 * IDLE)
    assert not is_signed_in(browser)
