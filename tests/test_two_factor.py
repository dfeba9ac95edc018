"""Two-factor sign-in (issue 13): enrolment, the code step, recovery codes, roles, reset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.domain import totp
from portal.extensions import keyring
from portal.models import AuditEvent, RecoveryCode, User
from portal.services import two_factor
from portal.web.auth.two_factor import ENROL_KEY, PENDING_KEY
from tests import factories
from tests.conftest import TEST_PASSWORD, reconfigure

# The middle of a 30-second step, so "the step before" and "the step after" are clear.
MOMENT = datetime(2026, 11, 30, 12, 0, 15, tzinfo=UTC)
STEP = timedelta(seconds=30)


def actions(session: Session, user: User) -> list[str]:
    """The audit actions about USER, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "user", AuditEvent.object_id == str(user.id))
            .order_by(AuditEvent.id)
        )
    )


def code_at(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def password_step(client: FlaskClient, user: User, **extra: Any) -> Any:
    return client.post("/login", data={"email": user.email, "password": TEST_PASSWORD, **extra})


@pytest.fixture
def at_moment(clock: Any) -> Any:
    clock.set(MOMENT)
    return clock


@pytest.fixture
def enrolled(session: Session, make_user: Any, at_moment: Any) -> tuple[User, str, list[str]]:
    """An approver with two-factor sign-in on (enrolled with the previous step's code)."""
    user = make_user("approver")
    secret, codes = factories.two_factor(session, keyring(), user, now=MOMENT)
    return user, secret, codes


# Enrolment ----------------------------------------------------------------------------


def shown_secret(page: str) -> str:
    found = re.search(r'<p class="secret"><code>([A-Z2-7 ]+)</code>', page)
    assert found, "the secret is shown for manual entry"
    return found.group(1).replace(" ", "")


def test_enrolment_shows_a_qr_code_and_the_secret_then_takes_a_code_from_it(
    app: Flask, session: Session, make_user: Any, login: Any, at_moment: Any
) -> None:
    user = make_user("operator")
    browser = login(user)
    page = browser.get("/account/two-factor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "<path" in svg
    assert "script" not in svg
    assert "style=" not in svg
    # The CSP forbids inline script; the page has only the site's own script file.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/portal.js" defer>']
    secret = shown_secret(html)
    # A reload shows the same secret (kept, encrypted, in the session until confirmed).
    assert shown_secret(browser.get("/account/two-factor").get_data(as_text=True)) == secret

    wrong = browser.post("/account/two-factor", data={"code": "000000"})
    assert wrong.status_code == 422
    assert "not right" in wrong.get_data(as_text=True)
    session.refresh(user)
    assert not two_factor.is_enabled(user)

    done = browser.post("/account/two-factor", data={"code": code_at(secret, MOMENT)})
    assert done.status_code == 200
    shown = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", done.get_data(as_text=True))
    assert len(shown) == 10
    assert len(set(shown)) == 10
    assert done.headers["Cache-Control"] == "no-store"
    session.refresh(user)
    assert two_factor.is_enabled(user)
    assert "user.two_factor_enabled" in actions(session, user)
    # Shown once: the page now describes the second factor, no codes and no secret.
    again = browser.get("/account/two-factor").get_data(as_text=True)
    assert "10 unused recovery codes" in again
    assert secret not in again
    assert shown[0] not in again


def test_a_wrong_or_malformed_enrolment_code_is_refused(
    session: Session, make_user: Any, login: Any, at_moment: Any
) -> None:
    user = make_user("viewer")
    browser = login(user)
    secret = shown_secret(browser.get("/account/two-factor").get_data(as_text=True))
    two_steps_ago = code_at(secret, MOMENT - 2 * STEP)
    for code in (two_steps_ago, "12345", "abcdef", "1" * 64, "<b>"):
        if code == code_at(secret, MOMENT):
            continue
        assert browser.post("/account/two-factor", data={"code": code}).status_code == 422
    session.refresh(user)
    assert user.totp_secret_encrypted is None


def test_the_secret_being_enrolled_travels_encrypted_in_the_cookie(
    make_user: Any, login: Any, at_moment: Any
) -> None:
    browser = login(make_user("viewer"))
    secret = shown_secret(browser.get("/account/two-factor").get_data(as_text=True))
    with browser.session_transaction() as flask_session:
        sealed = flask_session[ENROL_KEY]
    assert secret not in sealed


# The sign-in's second step -------------------------------------------------------------


def test_sign_in_requires_the_second_step(
    session: Session, client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    user, secret, _codes = enrolled
    first = password_step(client, user)
    assert first.status_code == 302
    assert first.headers["Location"] == "/login/two-factor"
    # The password alone signs nobody in.
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/login/two-factor").status_code == 200

    assert client.post("/login/two-factor", data={"code": "000000"}).status_code == 401
    assert actions(session, user)[-1] == "user.two_factor_failed"

    done = client.post("/login/two-factor", data={"code": code_at(secret, MOMENT)})
    assert done.status_code == 302
    assert done.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert actions(session, user)[-1] == "auth.login_succeeded"


def test_the_second_step_keeps_a_local_next_and_drops_another(
    client: FlaskClient, enrolled: tuple[User, str, list[str]], at_moment: Any
) -> None:
    user, secret, _codes = enrolled
    password_step(client, user, next="/partners")
    done = client.post("/login/two-factor", data={"code": code_at(secret, MOMENT)})
    assert done.headers["Location"] == "/partners"
    client.post("/logout")
    at_moment.advance(STEP)
    password_step(client, user, next="https://evil.example/")
    done = client.post("/login/two-factor", data={"code": code_at(secret, MOMENT + STEP)})
    assert done.headers["Location"] == "/"


def test_a_code_cannot_be_replayed(
    client: FlaskClient, enrolled: tuple[User, str, list[str]], at_moment: Any
) -> None:
    user, secret, _codes = enrolled
    code = code_at(secret, MOMENT)
    password_step(client, user)
    assert client.post("/login/two-factor", data={"code": code}).status_code == 302
    client.post("/logout")
    password_step(client, user)
    assert client.post("/login/two-factor", data={"code": code}).status_code == 401
    # Nor an older one still inside the window.
    assert (
        client.post("/login/two-factor", data={"code": code_at(secret, MOMENT - STEP)}).status_code
        == 401
    )
    at_moment.advance(STEP)
    fresh = code_at(secret, MOMENT + STEP)
    assert client.post("/login/two-factor", data={"code": fresh}).status_code == 302


def test_codes_one_step_either_side_are_accepted_two_are_not() -> None:
    secret = totp.new_secret()
    now = MOMENT
    step = int(now.timestamp()) // 30
    for offset in (-1, 0, 1):
        found = totp.matching_step(
            secret, code_at(secret, now + offset * STEP), now=now, after_step=None
        )
        assert found == step + offset
    for offset in (-2, 2):
        other = code_at(secret, now + offset * STEP)
        if other not in {code_at(secret, now + k * STEP) for k in (-1, 0, 1)}:
            assert totp.matching_step(secret, other, now=now, after_step=None) is None


def test_a_recovery_code_works_once(
    session: Session, client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    user, _secret, codes = enrolled
    password_step(client, user)
    # Read off paper: lower case and without dashes still counts.
    typed = codes[3].replace("-", " ").lower()
    done = client.post("/login/two-factor", data={"code": typed})
    assert done.status_code == 302
    assert "user.recovery_code_used" in actions(session, user)
    assert two_factor.remaining_recovery_codes(session, user) == 9
    client.post("/logout")
    password_step(client, user)
    assert client.post("/login/two-factor", data={"code": codes[3]}).status_code == 401
    assert client.post("/login/two-factor", data={"code": codes[4]}).status_code == 302


def test_the_pending_sign_in_expires(
    client: FlaskClient, enrolled: tuple[User, str, list[str]], at_moment: Any
) -> None:
    user, secret, _codes = enrolled
    password_step(client, user)
    at_moment.advance(timedelta(minutes=6))
    late = client.post(
        "/login/two-factor", data={"code": code_at(secret, MOMENT + timedelta(minutes=6))}
    )
    assert late.status_code == 302
    assert late.headers["Location"] == "/login"
    assert client.get("/").headers["Location"].startswith("/login")


def test_a_password_reset_voids_the_pending_sign_in(
    session: Session, client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    from portal.services import users

    user, secret, _codes = enrolled
    password_step(client, user)
    users.reset_password(session, factories.ACTOR, user)
    done = client.post("/login/two-factor", data={"code": code_at(secret, MOMENT)})
    assert done.headers["Location"] == "/login"


def test_the_code_step_without_a_first_step_or_with_a_forged_marker_goes_to_sign_in(
    client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    user, secret, _codes = enrolled
    assert client.post("/login/two-factor", data={"code": "123456"}).headers["Location"] == "/login"
    for marker in ("x", {"user": 5}, {"user": f"{user.id}:wrong", "until": 2**40}, {"until": "x"}):
        with client.session_transaction() as flask_session:
            flask_session[PENDING_KEY] = marker
        answer = client.post("/login/two-factor", data={"code": code_at(secret, MOMENT)})
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/login"


def test_hostile_codes_never_answer_5xx(
    client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    user, _secret, _codes = enrolled
    password_step(client, user)
    for junk in (
        "",
        "junk\x00<b>",
        "9" * 30,
        "9999-12-31",
        "\u202e123456",
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits: isdigit() is True
        "x" * 5000,
    ):
        assert client.post("/login/two-factor", data={"code": junk}).status_code in (401, 422)
    assert client.post("/login/two-factor", data={"code": ["1", "2"]}).status_code in (401, 422)


def test_the_code_step_is_throttled_and_failures_are_audited(
    app: Flask, session: Session, client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    reconfigure(app, RATELIMIT_TWO_FACTOR="3 per minute")
    user, secret, _codes = enrolled
    password_step(client, user)
    for _ in range(3):
        assert client.post("/login/two-factor", data={"code": "000000"}).status_code == 401
    assert (
        client.post("/login/two-factor", data={"code": code_at(secret, MOMENT)}).status_code == 429
    )
    assert actions(session, user).count("user.two_factor_failed") == 3
    # The budget follows the account, not only the address.
    other = client.application.test_client()
    other.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD},
        environ_base={"REMOTE_ADDR": "127.0.0.9"},
    )  # fmt: skip
    answer = other.post(
        "/login/two-factor", data={"code": code_at(secret, MOMENT)},
        environ_base={"REMOTE_ADDR": "127.0.0.9"},
    )  # fmt: skip
    assert answer.status_code == 429


# Turning it off, mandatory roles, reset ------------------------------------------------


def test_a_user_turns_it_off_with_a_code(
    session: Session, login: Any, enrolled: tuple[User, str, list[str]]
) -> None:
    user, secret, _codes = enrolled
    browser = login(user)
    assert browser.post("/account/two-factor/disable", data={"code": "000000"}).status_code == 422
    assert (
        browser.post(
            "/account/two-factor/disable", data={"code": code_at(secret, MOMENT)}
        ).status_code
        == 302
    )
    session.refresh(user)
    assert not two_factor.is_enabled(user)
    assert session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all() == []
    assert actions(session, user)[-2:] == ["user.two_factor_failed", "user.two_factor_disabled"]


def test_a_required_role_cannot_turn_it_off(
    app: Flask, session: Session, login: Any, enrolled: tuple[User, str, list[str]]
) -> None:
    reconfigure(app, TWO_FACTOR_REQUIRED_ROLES="admin,approver")
    user, secret, _codes = enrolled
    browser = login(user)
    refused = browser.post("/account/two-factor/disable", data={"code": code_at(secret, MOMENT)})
    assert refused.status_code == 422
    session.refresh(user)
    assert two_factor.is_enabled(user)


STAFF_URLS = ["/", "/partners", "/identities", "/users", "/audit", "/campaigns", "/expiring"]


def test_mandatory_roles_are_sent_to_enrolment_from_every_staff_url(
    app: Flask, session: Session, make_user: Any, login: Any, at_moment: Any
) -> None:
    reconfigure(app, TWO_FACTOR_REQUIRED_ROLES="admin,approver")
    admin = make_user("admin")
    browser = login(admin)
    for url in STAFF_URLS:
        answer = browser.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"] == "/account/two-factor", url
    posted = browser.post("/users/new", data={"email": "x@example.com", "role": "admin"})
    assert posted.headers["Location"] == "/account/two-factor"
    assert session.scalar(select(User).where(User.email == "x@example.com")) is None
    # Every other staff endpoint too: the whole route table, not just a sample.
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and not rule.arguments and "GET" in rule.methods:
            assert browser.get(rule.rule).status_code == 302, rule.rule
    # Viewers are not forced; signing out still works.
    assert login(make_user("viewer")).get("/").status_code == 200
    secret = shown_secret(browser.get("/account/two-factor").get_data(as_text=True))
    assert (
        browser.post("/account/two-factor", data={"code": code_at(secret, MOMENT)}).status_code
        == 200
    )
    for url in STAFF_URLS:
        assert browser.get(url).status_code == 200, url


def test_a_mandatory_user_signing_in_lands_on_enrolment(
    app: Flask, client: FlaskClient, make_user: Any, at_moment: Any
) -> None:
    reconfigure(app, TWO_FACTOR_REQUIRED_ROLES="approver")
    user = make_user("approver")
    assert password_step(client, user).headers["Location"] == "/"
    assert client.get("/").headers["Location"] == "/account/two-factor"


def test_admin_reset_is_audited_then_the_password_alone_signs_in(
    app: Flask,
    session: Session,
    client: FlaskClient,
    admin_client: FlaskClient,
    enrolled: tuple[User, str, list[str]],
) -> None:
    user, _secret, _codes = enrolled
    # User management asks a sign-in older than PORTAL_REAUTH_MINUTES for the password again.
    confirmed = admin_client.post(
        "/login/confirm", data={"password": TEST_PASSWORD, "next": f"/users/{user.id}/edit"}
    )
    assert confirmed.status_code == 302
    page = admin_client.get(f"/users/{user.id}/edit").get_data(as_text=True)
    assert "Reset two-factor sign-in" in page
    answer = admin_client.post(f"/users/{user.id}/reset-two-factor")
    assert answer.status_code == 302
    session.refresh(user)
    assert not two_factor.is_enabled(user)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.two_factor_reset")
    ).one()
    assert event.object_id == str(user.id)
    assert event.details == {"was_enabled": True}
    assert password_step(client, user).headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_after_a_reset_a_mandatory_user_must_enrol_again(
    app: Flask, session: Session, client: FlaskClient, admin_client: FlaskClient,
    enrolled: tuple[User, str, list[str]],
) -> None:  # fmt: skip
    user, _secret, _codes = enrolled
    reconfigure(app, TWO_FACTOR_REQUIRED_ROLES="approver")
    admin_client.post(f"/users/{user.id}/reset-two-factor")
    password_step(client, user)
    assert client.get("/").headers["Location"] == "/account/two-factor"


def test_the_reset_needs_an_admin_and_a_csrf_token(
    app: Flask, session: Session, client_as: Any, enrolled: tuple[User, str, list[str]]
) -> None:
    user, _secret, _codes = enrolled
    assert client_as("operator").post(f"/users/{user.id}/reset-two-factor").status_code == 403
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client_as("admin").post(f"/users/{user.id}/reset-two-factor").status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    session.refresh(user)
    assert two_factor.is_enabled(user)


def test_reset_from_the_command_line(
    runner: Any, session: Session, enrolled: tuple[User, str, list[str]]
) -> None:
    user, _secret, _codes = enrolled
    result = runner.invoke(args=["user", "reset-2fa", user.email.upper()])
    assert result.exit_code == 0, result.output
    assert "Reset two-factor sign-in" in result.output
    session.refresh(user)
    assert not two_factor.is_enabled(user)
    assert actions(session, user)[-1] == "user.two_factor_reset"
    missing = runner.invoke(args=["user", "reset-2fa", "nobody@example.com"])
    assert missing.exit_code == 1


# At rest -------------------------------------------------------------------------------


def test_the_database_holds_no_plaintext_secret_or_recovery_code(
    session: Session, client: FlaskClient, enrolled: tuple[User, str, list[str]]
) -> None:
    user, secret, codes = enrolled
    password_step(client, user)
    client.post("/login/two-factor", data={"code": codes[0]})
    session.flush()
    needles = {secret, secret.lower()}
    for code in codes:
        needles |= {code, code.replace("-", ""), code.lower()}
    for table in ("users", "recovery_codes", "audit_events", "staff_sessions"):
        for row in session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
            dump = " ".join(
                value.hex() + " " + value.decode("latin-1")
                if isinstance(value, bytes | memoryview)
                else str(value)
                for value in (bytes(v) if isinstance(v, memoryview) else v for v in row)
            )
            assert not [n for n in needles if n in dump], table
    # The stored secret opens only under the key ring, bound to its user.
    session.refresh(user)
    assert user.totp_secret_encrypted is not None
    assert (
        keyring().decrypt(
            user.totp_secret_encrypted, associated_data=f"user {user.id} totp secret".encode()
        )
        == secret.encode()
    )


def test_recovery_code_hashes_are_salted() -> None:
    first, second = totp.hash_recovery_code("ABCD-EFGH"), totp.hash_recovery_code("ABCD-EFGH")
    assert first != second
    assert totp.recovery_code_matches(first, "abcd efgh")
    assert not totp.recovery_code_matches(first, "ABCD-EFGI")
    assert not totp.recovery_code_matches("not-hex$00", "ABCD-EFGH")


def test_keys_rotate_re_encrypts_two_factor_secrets(
    app: Flask, runner: Any, session: Session, enrolled: tuple[User, str, list[str]]
) -> None:
    from portal.domain.keys import KeyRing
    from portal.extensions import KEYRING_KEY

    user, _secret, _codes = enrolled
    old = app.config["KEY_ENCRYPTION_KEYS"]
    ring = KeyRing.from_strings([*old, factories.new_kek()])
    app.extensions[KEYRING_KEY] = ring
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 of 1 two-factor secrets" in result.output
    session.refresh(user)
    assert user.totp_secret_encrypted is not None
    assert not ring.needs_rotation(user.totp_secret_encrypted)


# The setting ---------------------------------------------------------------------------


def test_required_roles_are_read_from_the_environment_as_text(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal import create_app
    from portal.settings import Settings
    from tests.conftest import test_settings

    monkeypatch.setenv("PORTAL_TWO_FACTOR_REQUIRED_ROLES", "admin, Approver")
    app = create_app(test_settings(tmp_path, "sqlite://"))
    assert app.extensions["portal.settings"].two_factor_required_roles == {"admin", "approver"}
    assert (
        Settings.from_config(
            {**app.config, "TWO_FACTOR_REQUIRED_ROLES": ""}
        ).two_factor_required_roles
        == frozenset()
    )


@pytest.mark.parametrize("value", ["admin,root", ["admin", "boss"], 42])
def test_an_unknown_required_role_is_refused_at_start(tmp_path: Any, value: object) -> None:
    from portal import create_app
    from portal.config import ConfigError
    from tests.conftest import test_settings

    with pytest.raises(ConfigError, match="PORTAL_TWO_FACTOR_REQUIRED_ROLES"):
        create_app(test_settings(tmp_path, "sqlite://", TWO_FACTOR_REQUIRED_ROLES=value))


def test_the_qr_code_names_the_portal_and_the_account() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, account="ann@example.com", issuer="Certificate Exchange")
    assert uri.startswith("otpauth://totp/Certificate%20Exchange:ann%40example.com?")
    assert f"secret={secret}" in uri
    assert len(secret) == 32  # 160 bits, RFC 4226's recommended length


# New recovery codes ---------------------------------------------------------------------


def test_new_recovery_codes_replace_the_old_ones_after_a_current_code(
    session: Session, login: Any, enrolled: tuple[User, str, list[str]]
) -> None:
    user, secret, old_codes = enrolled
    browser = login(user)
    assert "Make new recovery codes" in browser.get("/account/two-factor").get_data(as_text=True)

    refused = browser.post("/account/two-factor/recovery-codes", data={"codes-code": "000000"})
    assert refused.status_code == 422
    assert "That code is not right" in refused.get_data(as_text=True)
    assert two_factor.remaining_recovery_codes(session, user) == 10  # nothing changed

    answer = browser.post(
        "/account/two-factor/recovery-codes", data={"codes-code": code_at(secret, MOMENT)}
    )

    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    shown = re.findall(r"<li><code>([^<]+)</code></li>", page)
    assert len(shown) == 10
    assert set(shown).isdisjoint(old_codes)
    assert "The earlier recovery codes no longer work." in page
    assert answer.headers["Cache-Control"].startswith("no-store")
    session.expire_all()
    assert two_factor.remaining_recovery_codes(session, user) == 10
    assert actions(session, user)[-2:] == [
        "user.two_factor_failed",
        "user.recovery_codes_regenerated",
    ]
    # An old code no longer signs in; a new one does.
    later = MOMENT + 2 * STEP
    assert (
        two_factor.check_code(session, keyring(), factories.ACTOR, user, old_codes[0], now=later)
        is None
    )
    assert (
        two_factor.check_code(session, keyring(), factories.ACTOR, user, shown[0], now=later)
        == "recovery"
    )
