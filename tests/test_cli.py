"""`portal ...` commands as a user types them: results, refusals (exit 1), misuse (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import Identity, Partner, User
from portal.services import users
from tests import factories
from tests.conftest import test_settings


@pytest.fixture
def fresh_app(tmp_path: Path, fresh_databases) -> Flask:
    """An app on its own empty database (schema commands need a real, separate database)."""
    return create_app(test_settings(tmp_path, fresh_databases.new_url()))


def test_init_creates_then_reports_up_to_date(fresh_app: Flask) -> None:
    runner = fresh_app.test_cli_runner()
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "upgraded from empty" in first.output
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_serve_first_run_creates_schema_and_one_admin(
    fresh_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "waitress.serve", lambda app, host, port, **kwargs: served.append((host, port))
    )
    runner = fresh_app.test_cli_runner()
    first = runner.invoke(args=["serve", "--port", "5055"])
    assert first.exit_code == 0, first.output
    assert served == [("127.0.0.1", 5055)]
    assert "Created the first admin: admin@example.com" in first.output
    password = first.output.split("first sign-in): ")[1].split()[0]
    with fresh_app.app_context():
        admin = users.authenticate(db.session, "admin@example.com", password)
        assert admin is not None
        assert admin.role == "admin"
        assert admin.must_change_password
    second = runner.invoke(args=["serve"])
    assert second.exit_code == 0
    assert "first admin" not in second.output
    with fresh_app.app_context():
        assert users.count_users(db.session) == 1


def test_user_create_generates_and_prints_a_password(runner, session) -> None:
    result = runner.invoke(args=["user", "create", "Ops@Example.com", "--role", "operator"])
    assert result.exit_code == 0, result.output
    assert "Created user ops@example.com with role operator." in result.output
    password = result.output.split("first sign-in): ")[1].strip()
    assert len(password) >= 20
    assert users.authenticate(session, "ops@example.com", password) is not None


def test_user_create_with_password_from_stdin(runner, session) -> None:
    result = runner.invoke(
        args=["user", "create", "a@example.com", "--role", "viewer", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "password" not in result.output.lower().replace("--password", "")
    user = users.authenticate(session, "a@example.com", "a long enough password")
    assert user is not None
    assert not user.must_change_password


@pytest.mark.parametrize(
    "args",
    [
        ["user", "create", "a@example.com"],  # --role missing
        ["user", "create", "a@example.com", "--role", "superuser"],
        ["user", "create", "--role", "admin"],  # EMAIL missing
        ["partner", "add", "--name", "X"],
        ["identity", "add", "--as2-id", "X"],
        ["identity", "add", "--name", "X", "--as2-id", "X", "--environment", "staging"],
        ["no-such-command"],
    ],
)
def test_misuse_exits_2_with_usage(runner, args: list[str]) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert "Usage:" in result.output


def test_user_create_refusals_exit_1_with_one_line(runner, make_user) -> None:
    existing = make_user("viewer")
    duplicate = runner.invoke(args=["user", "create", existing.email, "--role", "admin"])
    assert duplicate.exit_code == 1
    assert duplicate.output.strip() == f"Error: A user with email {existing.email} already exists."
    short = runner.invoke(
        args=["user", "create", "b@example.com", "--role", "admin", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    bad_email = runner.invoke(args=["user", "create", "not-an-email", "--role", "admin"])
    assert bad_email.exit_code == 1
    assert "not a valid email" in bad_email.output


def test_identity_and_partner_add(runner, session) -> None:
    result = runner.invoke(args=["identity", "add", "--name", "Acme Prod", "--as2-id", "ACMEPROD"])
    assert result.exit_code == 0, result.output
    assert "Created identity Acme Prod (ACMEPROD, production)." in result.output
    result = runner.invoke(
        args=[
            "partner", "add", "--name", "Globex", "--as2-id", "GLOBEX", "--identity", "ACMEPROD",
            "--email", "edi@globex.example", "--email", "ops@globex.example",
            "--timezone", "America/Chicago",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    partner = session.scalar(select(Partner).where(Partner.as2_id == "GLOBEX"))
    assert partner.identity.as2_id == "ACMEPROD"
    assert partner.timezone == "America/Chicago"
    assert partner.contact_emails == ["edi@globex.example", "ops@globex.example"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["--name", "G", "--as2-id", "G1", "--identity", "NOPE", "--email", "a@b.example"],
            "Error: No identity with AS2 ID NOPE.",
        ),
        (
            ["--name", "G", "--as2-id", "G1", "--identity", "ACMEX", "--email", "bad"],
            "not a valid email",
        ),
        (
            ["--name", "G", "--as2-id", "G1", "--identity", "ACMEX", "--email", "a@b.example",
             "--timezone", "Nowhere/City"],
            "Error: Choose a time zone such as Europe/Berlin.",
        ),
        (
            ["--name", "G", "--as2-id", "DUP", "--identity", "ACMEX", "--email", "a@b.example"],
            "Error: The AS2 ID DUP is already used by partner",
        ),
    ],
)  # fmt: skip
def test_partner_add_refusals(runner, session, args: list[str], reason: str) -> None:
    identity = factories.identity(session, as2_id="ACMEX")
    factories.partner(session, identity, as2_id="DUP")
    session.commit()  # the command shares this session; a refusal rolls back only its own work
    before = len(session.scalars(select(Partner)).all())
    result = runner.invoke(args=["partner", "add", *args])
    assert result.exit_code == 1
    assert reason in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert len(session.scalars(select(Partner)).all()) == before


def test_identity_add_duplicate_is_refused(runner, session) -> None:
    factories.identity(session, as2_id="TAKEN")
    session.commit()  # the command shares this session; a refusal rolls back only its own work
    result = runner.invoke(args=["identity", "add", "--name", "Again", "--as2-id", "TAKEN"])
    assert result.exit_code == 1
    assert "already used by identity" in result.output
    assert len(session.scalars(select(Identity).where(Identity.as2_id == "TAKEN")).all()) == 1


def test_console_script_as_typed(tmp_path: Path, fresh_databases) -> None:
    """The installed `portal` script, in a real process, against a fresh database."""
    script = Path(sys.executable).parent / "portal"
    env = {
        **os.environ,
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
        "PORTAL_DATABASE_URL": fresh_databases.new_url(),
    }

    def portal(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603  (our own script, fixed arguments)
            [str(script), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )

    assert portal("init").returncode == 0
    created = portal("user", "create", "cli@example.com", "--role", "admin")
    assert created.returncode == 0, created.stderr
    again = portal("user", "create", "cli@example.com", "--role", "admin")
    assert again.returncode == 1
    assert again.stderr.strip() == "Error: A user with email cli@example.com already exists."
    misuse = portal("user", "create", "x@example.com")
    assert misuse.returncode == 2
    assert "Missing option '--role'" in misuse.stderr
    assert portal("--help").returncode == 0


def test_users_are_listed_in_the_database(runner, session) -> None:
    runner.invoke(args=["user", "create", "listed@example.com", "--role", "approver"])
    assert session.scalar(select(User.role).where(User.email == "listed@example.com")) == "approver"
