"""Passwords: at least 12 characters, not common, not a pattern, not the email; refused with
a clear message on the CLI, the user pages and the password change; argon2id hashes are
redone on sign-in when the parameters change."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from portal.domain import password_policy
from portal.domain.password_policy import COMMON, PATTERN, PERSONAL, password_problem
from portal.models import User
from portal.services import users
from tests.conftest import TEST_PASSWORD
from tests.factories import ACTOR


def test_the_bundled_list_holds_ten_thousand_common_passwords() -> None:
    common = password_policy.common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "iloveyou", "trustno1"} <= common


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", f"Use at least {password_policy.MIN_LENGTH} characters."),
        ("x" * 1025, "Use at most 1024 characters."),
        ("password1234", COMMON),
        ("Password2024!", COMMON),
        ("P@ssw0rd12345", COMMON),
        ("dragon!!!!!!!", COMMON),
        ("iloveyou12345", COMMON),
        ("1qaz2wsx3edc", COMMON),
        ("aaaaaaaaaaaa", PATTERN),
        ("abababababab", PATTERN),
        ("monkeymonkey", PATTERN),
        ("abcdefghijkl", PATTERN),
        ("123456789012", PATTERN),
        ("zxcvbnmasdfgh", PATTERN),
        ("qwertyuiopasdfghjkl", PATTERN),
        ("john.smith2024!", PERSONAL),
        ("acmecorp rocks hard", PERSONAL),
        (TEST_PASSWORD, None),
        ("blue7 glass ledger", None),
        ("xK9#mQ2$vL8pZ", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    assert password_problem(password, email="john.smith@acmecorp.example") == problem


def test_user_creation_refuses_a_common_password(session) -> None:
    with pytest.raises(users.ServiceError) as refused:
        users.create_user(
            session, ACTOR, email="new@example.com", role="viewer", password="password123456"
        )
    assert refused.value.field == "password"
    assert "too common" in str(refused.value)


def test_the_cli_refuses_a_weak_password_with_a_clear_message(runner, session) -> None:
    result = runner.invoke(
        args=["user", "create", "cli@example.com", "--role", "viewer", "--password-stdin"],
        input="qwertyuiop123\n",
    )
    assert result.exit_code != 0
    assert "too common" in result.output
    assert session.scalar(select(User).where(User.email == "cli@example.com")) is None


def test_the_password_change_refuses_a_pattern(login, make_user) -> None:
    user = make_user("viewer")
    browser = login(user)
    response = browser.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "abcdefghijklmnop",
            "confirm": "abcdefghijklmnop",
        },
    )
    assert response.status_code == 422
    assert "is a pattern" in response.get_data(as_text=True)


def test_the_password_change_refuses_the_email(login, make_user) -> None:
    user = make_user("viewer", email="margaret.hopper@example.com")
    response = login(user).post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "Margaret loves 1906",
            "confirm": "Margaret loves 1906",
        },
    )
    assert response.status_code == 422
    assert "email address" in response.get_data(as_text=True)


def test_a_hash_made_with_older_parameters_is_redone_at_sign_in(
    client, session, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user("viewer")
    old_hash = user.password_hash
    stronger = PasswordHasher.from_parameters(profiles.CHEAPEST)
    stronger = PasswordHasher(
        time_cost=stronger.time_cost + 1,
        memory_cost=stronger.memory_cost * 2,
        parallelism=stronger.parallelism,
    )
    monkeypatch.setattr(users, "_hasher", stronger)
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    session.refresh(user)
    assert user.password_hash != old_hash
    assert not stronger.check_needs_rehash(user.password_hash)
    assert stronger.verify(user.password_hash, TEST_PASSWORD)
    assert user.password_hash.startswith("$argon2id$")


def test_a_current_hash_is_left_alone_at_sign_in(client, session, make_user) -> None:
    user = make_user("viewer")
    old_hash = user.password_hash
    assert (
        client.post("/login", data={"email": user.email, "password": TEST_PASSWORD}).status_code
        == 302
    )
    session.refresh(user)
    assert user.password_hash == old_hash
