"""Settings layering, generated secrets, and a factory that only builds."""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from portal import create_app
from portal.config import ConfigError
from portal.settings import settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PORTAL_* variable from the outside leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def write_instance_config(instance: Path, text: str) -> None:
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.py").write_text(text)


def test_defaults_apply_without_any_layer(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["PAGE_SIZE"] == 25
    assert app.config["BASE_URL"] is None  # links follow the address each request reached
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portal.sqlite3'}"


def test_each_layer_overrides_the_one_before(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    write_instance_config(
        tmp_path,
        'PAGE_SIZE = 10\nBASE_URL = "https://file.example"\nMAIL_FROM = "file@example.com"\n',
    )
    clean_env.setenv("PORTAL_PAGE_SIZE", "20")
    clean_env.setenv("PORTAL_MAIL_FROM", "env@example.com")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "MAIL_FROM": "test@example.com"})
    assert app.config["BASE_URL"] == "https://file.example"  # file beats default
    assert app.config["PAGE_SIZE"] == 20  # environment beats file, parsed as JSON
    assert app.config["MAIL_FROM"] == "test@example.com"  # test mapping beats environment


def test_campaign_at_risk_days_default_to_3_and_come_from_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from portal.settings import SETTINGS_KEY

    assert create_app({"INSTANCE_PATH": str(tmp_path)}).extensions[
        SETTINGS_KEY
    ].campaign_at_risk == timedelta(days=3)
    clean_env.setenv("PORTAL_CAMPAIGN_AT_RISK_DAYS", "5")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.extensions[SETTINGS_KEY].campaign_at_risk == timedelta(days=5)


def test_instance_path_from_environment(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORTAL_INSTANCE_PATH", str(tmp_path / "elsewhere"))
    app = create_app()
    assert app.instance_path == str(tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "secret_key").exists()


def test_secrets_are_generated_once_with_mode_0600(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    for name in ("secret_key", "key_encryption_key", "link_signing_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 32
    assert first.config["KEY_ENCRYPTION_KEYS"] == second.config["KEY_ENCRYPTION_KEYS"]


def test_secrets_from_environment_are_not_written(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PORTAL_SECRET_KEY", "s" * 40)
    clean_env.setenv("PORTAL_KEY_ENCRYPTION_KEYS", "a" * 43 + ", " + "b" * 43)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SECRET_KEY"] == "s" * 40
    assert app.config["KEY_ENCRYPTION_KEYS"] == ["a" * 43, "b" * 43]
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "key_encryption_key").exists()


def test_factory_writes_nothing_outside_instance_and_touches_no_database(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    clean_env.chdir(workdir)
    instance = tmp_path / "instance"
    create_app({"INSTANCE_PATH": str(instance)})
    assert list(workdir.iterdir()) == []
    assert sorted(p.name for p in instance.iterdir()) == [
        "key_encryption_key",
        "link_signing_key",
        "secret_key",
    ]


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("SMTP_TLS", "maybe", "PORTAL_SMTP_TLS"),
        ("BASE_URL", "ftp://x", "PORTAL_BASE_URL"),
        ("SMTP_PORT", 70000, "PORTAL_SMTP_PORT"),
        ("PAGE_SIZE", 0, "PORTAL_PAGE_SIZE"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "PORTAL_DEFAULT_TIMEZONE"),
        ("SECRET_KEY", "short", "PORTAL_SECRET_KEY"),
        ("KEY_ENCRYPTION_KEYS", 42, "PORTAL_KEY_ENCRYPTION_KEYS"),
        ("FOUR_EYES_ALWAYS", "yes", "PORTAL_FOUR_EYES_ALWAYS"),
        ("LINK_DEFAULT_EXPIRY", "forever", "PORTAL_LINK_DEFAULT_EXPIRY"),
        ("LINK_SIGNING_KEYS", ["short"], "PORTAL_LINK_SIGNING_KEYS"),
        ("CAMPAIGN_AT_RISK_DAYS", -1, "PORTAL_CAMPAIGN_AT_RISK_DAYS"),
        ("CAMPAIGN_AT_RISK_DAYS", "3", "PORTAL_CAMPAIGN_AT_RISK_DAYS"),
        ("RATELIMIT_LOGIN_ACCOUNT", "lots", "PORTAL_RATELIMIT_LOGIN_ACCOUNT"),
        ("RATELIMIT_LOGIN_ADDRESS", "", "PORTAL_RATELIMIT_LOGIN_ADDRESS"),
        ("SESSION_IDLE_MINUTES", 0, "PORTAL_SESSION_IDLE_MINUTES"),
        ("SESSION_LIFETIME_HOURS", "12", "PORTAL_SESSION_LIFETIME_HOURS"),
        ("REAUTH_MINUTES", True, "PORTAL_REAUTH_MINUTES"),
    ],
)
def test_invalid_settings_are_refused_by_name(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, setting: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app({"INSTANCE_PATH": str(tmp_path), setting: value})


def test_https_base_url_marks_session_cookie_secure(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "BASE_URL": "https://certs.example.com"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_settings_are_read_once_typed_and_frozen(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PORTAL_CERTIFICATE_OVERLAP_DAYS", "3")
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "MAIL_FROM": "certs@example.com", "SMTP_HOST": "relay"}
    )
    with app.app_context():
        read = settings()
    assert read.certificate_overlap == timedelta(days=3)
    assert read.base_url is None
    assert read.contact_email == "certs@example.com"  # CONTACT_EMAIL falls back on MAIL_FROM
    assert read.default_timezone == "UTC"
    assert read.smtp is not None
    assert read.smtp.host == "relay"
    assert read.email_is_on
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.page_size = 1  # type: ignore[misc]


def test_email_is_off_without_a_relay(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        assert settings().smtp is None
        assert not settings().email_is_on


def test_the_session_cookie_lasts_as_long_as_the_server_session(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from portal.settings import init_settings

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SESSION_LIFETIME_HOURS": 6})
    assert app.permanent_session_lifetime == timedelta(hours=6)
    assert init_settings(app).session_lifetime == timedelta(hours=6)
    assert init_settings(app).session_idle == timedelta(minutes=30)
