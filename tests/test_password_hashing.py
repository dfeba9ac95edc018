"""Password hashes: argon2id at the configured parameters, redone when those change."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from portal.services import users
from tests.conftest import TEST_PASSWORD


def test_the_shipped_parameters_are_owasps_argon2id_setting() -> None:
    # The suite runs with the cheapest hasher; these are what the module builds for real use.
    shipped = PasswordHasher(
        time_cost=users.ARGON2_TIME_COST, memory_cost=users.ARGON2_MEMORY_KIB,
        parallelism=users.ARGON2_LANES,
    )  # fmt: skip

    assert shipped.type is Type.ID
    assert (shipped.memory_cost, shipped.time_cost, shipped.parallelism) == (19 * 1024, 2, 1)


def test_a_hash_made_with_other_parameters_is_redone_at_the_next_sign_in(
    client, make_user, session, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    new = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
    user = make_user("viewer")
    user.password_hash = old.hash(TEST_PASSWORD)
    session.commit()
    monkeypatch.setattr(users, "_hasher", new)

    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})

    assert response.status_code == 302
    session.refresh(user)
    assert extract_parameters(user.password_hash).memory_cost == 16
    assert new.verify(user.password_hash, TEST_PASSWORD)
