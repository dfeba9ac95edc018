"""Admins manage staff accounts through the users pages."""

from __future__ import annotations

from sqlalchemy import select

from portal.models import AuditEvent, User
from portal.services import users
from tests.conftest import reconfigure


def test_admin_creates_a_user_and_sees_the_password_once(admin_client, session) -> None:
    response = admin_client.post(
        "/users/new",
        data={"email": "New.Person@Example.com", "role": "approver", "timezone": "UTC"},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    user = session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user is not None
    assert user.role == "approver"
    assert user.must_change_password
    password = page.split('<p class="secret"><code>')[1].split("</code>")[0]
    assert users.authenticate(session, user.email, password) is not None
    # Not repeated anywhere else: the list shows no password.
    assert password not in admin_client.get("/users").get_data(as_text=True)


def test_duplicate_or_invalid_user_is_a_field_error(admin_client, make_user) -> None:
    existing = make_user("viewer")
    response = admin_client.post(
        "/users/new", data={"email": existing.email, "role": "viewer", "timezone": "UTC"}
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    response = admin_client.post(
        "/users/new", data={"email": "nope", "role": "viewer", "timezone": "UTC"}
    )
    assert response.status_code == 422
    assert "Enter an email address" in response.get_data(as_text=True)


def test_admin_changes_role_and_disables(admin_client, make_user, session) -> None:
    target = make_user("viewer")
    response = admin_client.post(
        f"/users/{target.id}/edit",
        data={"role": "operator", "timezone": "Europe/Paris"},  # checkbox absent: disabled
    )
    assert response.status_code == 302
    session.expire_all()
    target = session.get(User, target.id)
    assert (target.role, target.is_enabled, target.timezone) == ("operator", False, "Europe/Paris")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.updated")).one()
    assert event.details["role"] == ["viewer", "operator"]


def test_admin_cannot_demote_or_disable_themselves(app, login, make_user) -> None:
    admin = make_user("admin")
    browser = login(admin)
    response = browser.post(
        f"/users/{admin.id}/edit", data={"role": "viewer", "is_enabled": "y", "timezone": "UTC"}
    )
    assert response.status_code == 422
    assert "cannot remove your own admin role" in response.get_data(as_text=True)


def test_reset_password_shows_a_new_one_time_password(admin_client, make_user, session) -> None:
    target = make_user("viewer")
    response = admin_client.post(f"/users/{target.id}/reset-password")
    assert response.status_code == 200
    password = response.get_data(as_text=True).split('<p class="secret"><code>')[1].split("<")[0]
    assert users.authenticate(session, target.email, password) is not None
    assert session.get(User, target.id).must_change_password


def test_unknown_user_is_404(admin_client) -> None:
    assert admin_client.get("/users/999999/edit").status_code == 404
    assert admin_client.post("/users/999999/reset-password").status_code == 404


def test_user_search(admin_client, make_user) -> None:
    make_user("viewer", email="findme@example.com")
    page = admin_client.get("/users?q=FINDME").get_data(as_text=True)
    assert "findme@example.com" in page


def test_times_show_in_the_viewer_zone_with_utc_beside(login, make_user, session) -> None:
    viewer = make_user("viewer", timezone="Asia/Tokyo")
    page = login(viewer).get("/audit").get_data(as_text=True)
    assert "JST" in page
    assert "UTC)" in page


def test_new_records_take_the_configured_default_zone(app, admin_client, runner, session) -> None:
    reconfigure(app, DEFAULT_TIMEZONE="Europe/Berlin")
    form = admin_client.get("/users/new").get_data(as_text=True)
    assert '<option selected value="Europe/Berlin">' in form
    result = runner.invoke(args=["user", "create", "zone@example.com", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "zone@example.com"))
    assert user is not None
    assert user.timezone == "Europe/Berlin"
