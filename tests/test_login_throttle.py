"""Sign-in is throttled per client address and per account, answers alike for known and
unknown accounts, and every success, failure and refusal is audited (never the password)."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import AuditEvent
from tests.conftest import TEST_PASSWORD, test_settings


def throttled_app(tmp_path: Path, database_url: str, connection, **settings) -> Flask:
    values = {
        "RATELIMIT_LOGIN_ACCOUNT": "3 per 15 minutes",
        "RATELIMIT_LOGIN_ADDRESS": "5 per 15 minutes",
        **settings,
    }
    app = create_app(test_settings(tmp_path, database_url, **values))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


def post_login(app: Flask, email: str, password: str, **environ):
    return app.test_client().post(
        "/login", data={"email": email, "password": password}, environ_base=environ
    )


def audit_rows(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_login_flood_from_one_address_is_refused_even_with_the_right_password(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection)
    user = make_user("viewer")
    # Failures against several accounts, so only the address's budget (5) runs out.
    for number in range(5):
        response = post_login(app, f"guess{number}@example.com", "wrong password!!")
        assert response.status_code == 401
    refused = post_login(app, user.email, TEST_PASSWORD)
    assert refused.status_code == 429
    # Another address still signs in.
    assert post_login(app, user.email, TEST_PASSWORD, REMOTE_ADDR="10.9.8.7").status_code == 302


def test_the_429_page_is_readable_and_says_when_to_try_again(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection)
    user = make_user("viewer")
    for _ in range(3):
        post_login(app, user.email, "wrong password!!")
    response = post_login(app, user.email, TEST_PASSWORD)
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Too many sign-in attempts" in page
    assert "Try again after" in page
    assert "UTC" in page
    assert "Traceback" not in page
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60


def test_a_flood_against_one_account_from_many_addresses_is_refused_for_that_account(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection, TRUSTED_PROXIES=1)
    user, other = make_user("viewer"), make_user("viewer")
    for number in range(3):
        forwarded = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{number + 1}"}
        assert post_login(app, user.email, "wrong password!!", **forwarded).status_code == 401
    fresh = {"HTTP_X_FORWARDED_FOR": "198.51.100.77"}
    assert post_login(app, user.email, TEST_PASSWORD, **fresh).status_code == 429
    # The case and spaces of the email do not make a new budget.
    spelled = f"  {user.email.upper()} "
    assert post_login(app, spelled, TEST_PASSWORD, **fresh).status_code == 429
    # Other accounts are not locked by it.
    assert post_login(app, other.email, TEST_PASSWORD, **fresh).status_code == 302


def test_unknown_and_known_accounts_answer_the_same_status_and_body(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection)
    user = make_user("viewer")
    answers = []
    for email in (user.email, "unknown-" + secrets.token_hex(4) + "@example.com"):
        statuses, bodies = [], []
        for _ in range(4):  # 3 failures, then the refusal
            response = post_login(
                app, email, "wrong password!!", REMOTE_ADDR=f"10.1.{len(answers)}.1"
            )
            statuses.append(response.status_code)
            bodies.append(response.get_data(as_text=True).replace(email, "EMAIL"))
        answers.append((statuses, bodies[0], bodies[-1].split("Try again")[0]))
    assert answers[0] == answers[1]
    assert answers[0][0] == [401, 401, 401, 429]


def test_a_right_password_clears_the_account_failures(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection, RATELIMIT_LOGIN_ADDRESS="50 per hour")
    user = make_user("viewer")
    for _ in range(2):
        post_login(app, user.email, "wrong password!!")
    assert post_login(app, user.email, TEST_PASSWORD).status_code == 302
    for _ in range(2):
        assert post_login(app, user.email, "wrong password!!").status_code == 401
    assert post_login(app, user.email, TEST_PASSWORD).status_code == 302


def test_every_sign_in_success_and_failure_is_audited_without_the_password(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection)
    user = make_user("viewer")
    typed = "X" * 200 + "@example.com"  # the form takes 254; the audit keeps 100
    assert post_login(app, typed, "secret guess 1!!", REMOTE_ADDR="10.0.0.5").status_code == 401
    assert (
        post_login(app, user.email, "secret guess 2!!", REMOTE_ADDR="10.0.0.5").status_code == 401
    )
    assert post_login(app, user.email, TEST_PASSWORD, REMOTE_ADDR="10.0.0.6").status_code == 302
    with app.app_context():
        failed = audit_rows(db.session, "auth.login_failed")
        succeeded = audit_rows(db.session, "auth.login_succeeded")
        everything = list(db.session.scalars(select(AuditEvent)))
    assert [row.details["email"] for row in failed] == [typed[:100], user.email]
    assert all(row.client_address == "10.0.0.5" for row in failed)
    assert failed[1].object_id == str(user.id)
    assert [row.client_address for row in succeeded] == ["10.0.0.6"]
    assert succeeded[0].details["email"] == user.email
    text = repr([(row.summary, row.details, row.actor) for row in everything])
    for password in ("secret guess 1!!", "secret guess 2!!", TEST_PASSWORD):
        assert password not in text


def test_throttled_sign_ins_are_audited_once_per_window(
    tmp_path, database_url, connection, make_user
) -> None:
    app = throttled_app(tmp_path, database_url, connection)
    user = make_user("viewer")
    for _ in range(3):
        post_login(app, user.email, "wrong password!!")
    for _ in range(5):
        assert post_login(app, user.email, TEST_PASSWORD).status_code == 429
    with app.app_context():
        reasons = [row.details["reason"] for row in audit_rows(db.session, "auth.login_failed")]
    assert reasons == ["credentials"] * 3 + ["throttled"]


def test_the_limit_is_shared_by_processes_through_redis(
    tmp_path, database_url, connection, redis_uri, make_user
) -> None:
    # Two app instances stand for two web processes sharing one Redis.
    address = f"127.1.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    email = f"shared-{secrets.token_hex(4)}@example.com"
    first = throttled_app(tmp_path / "a", database_url, connection, RATELIMIT_STORAGE_URI=redis_uri)
    second = throttled_app(
        tmp_path / "b", database_url, connection, RATELIMIT_STORAGE_URI=redis_uri
    )
    environ = {"REMOTE_ADDR": address}
    assert post_login(first, email, "wrong password!!", **environ).status_code == 401
    assert post_login(second, email, "wrong password!!", **environ).status_code == 401
    assert post_login(first, email, "wrong password!!", **environ).status_code == 401
    assert post_login(second, email, "wrong password!!", **environ).status_code == 429


def test_access_denials_of_signed_in_staff_are_audited(client_as, session) -> None:
    viewer = client_as("viewer")
    assert viewer.get("/users").status_code == 403
    rows = audit_rows(session, "auth.access_denied")
    assert len(rows) == 1
    assert rows[0].details == {"path": "/users", "permission": "manage_users"}
