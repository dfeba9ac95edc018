"""Layered settings: defaults, instance/config.py, PORTAL_* environment, then the test mapping.

Secrets that are not configured are generated once into the instance folder (mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from portal.domain.campaigns import reminder_offsets
from portal.domain.keys import KeyRing, KeyRingError, generate_key
from portal.domain.roles import parse_roles
from portal.domain.tokens import parse_duration
from portal.timeutil import is_valid_timezone

ENV_PREFIX = "PORTAL"
SMTP_TLS_MODES = ("none", "starttls", "tls")

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file portal.sqlite3 in the instance folder
    # None: the scheme, host and port each request reached; commands fall back on
    # FALLBACK_BASE_URL (portal serve's default address) and say so.
    "BASE_URL": None,
    "SECRET_KEY": None,  # None: generated into instance/secret_key
    "KEY_ENCRYPTION_KEYS": None,  # None: generated into instance/key_encryption_keys
    "LINK_SIGNING_KEYS": None,  # None: generated into instance/link_signing_key
    "CONTACT_EMAIL": None,  # None: MAIL_FROM; shown to partners whose link is no longer valid
    "LINK_DEFAULT_EXPIRY": "14d",
    "LINK_DEFAULT_MAX_UPLOADS": 3,
    "RATELIMIT_INVALID_LINKS": "20 per minute",
    "RATELIMIT_HEADERS_ENABLED": False,
    # Failed sign-ins (and password confirmations) allowed per account and per client
    # address before /login answers 429 until the window passes.
    "RATELIMIT_LOGIN_ACCOUNT": "5 per 15 minutes",
    "RATELIMIT_LOGIN_ADDRESS": "20 per 15 minutes",
    "SESSION_IDLE_MINUTES": 30,  # a staff session unused this long ends on the server
    "SESSION_LIFETIME_HOURS": 12,  # a staff session ends this long after sign-in, used or not
    "REAUTH_MINUTES": 15,  # key export, users, tokens, webhooks ask the password again after
    "TRUSTED_PROXIES": 0,  # reverse proxies in front whose X-Forwarded-* headers to trust
    "HSTS_SECONDS": 31_536_000,  # Strict-Transport-Security max-age over HTTPS; 0: never sent
    "SMTP_HOST": None,  # None: email is off; messages wait in the outbox until it is set
    "SMTP_PORT": 25,
    "SMTP_USER": None,
    "SMTP_PASSWORD": None,
    "SMTP_TLS": "none",
    "SMTP_TIMEOUT": 30,  # seconds the mail relay gets for each step; slower is a failed try
    "MAIL_FROM": "portal@localhost",
    "MAIL_REPLY_TO": None,  # None: no Reply-To header; replies go to MAIL_FROM
    "RATELIMIT_STORAGE_URI": "memory://",
    "ADMIN_EMAIL": "admin@example.com",
    "DEFAULT_TIMEZONE": "UTC",
    "PAGE_SIZE": 25,
    "CERTIFICATE_OVERLAP_DAYS": 7,
    "CAMPAIGN_AT_RISK_DAYS": 3,  # a campaign partner not acknowledged this close to T is at risk
    "REMINDER_OFFSETS_DAYS": "14,3,1",  # days before a campaign's switch: partner reminders
    "DIGEST_ENABLED": True,  # the staff's daily digest of certificates expiring unreplaced
    # True: the runner sends a partner's 60-day upload request itself (once per certificate)
    "DRAFT_REQUESTS_AUTO_SEND": False,
    "FOUR_EYES_ALWAYS": False,  # every approval of a partner certificate needs two approvers
    # Roles that must sign in with a second factor, such as "admin,approver"; empty: optional.
    "TWO_FACTOR_REQUIRED_ROLES": "",
    "RATELIMIT_TWO_FACTOR": "10 per 5 minutes",  # code tries per pending sign-in and per address
    "WEBHOOK_TIMEOUT": 10,  # seconds a webhook receiver gets for a whole delivery
    "WEBHOOK_ALLOW_PRIVATE": False,  # True: webhooks may go to loopback and private addresses
    "EXPORT_DIR": None,  # None: no export directory; else the runner keeps it up to date
    "EXPORT_KEY_PASSPHRASE": None,  # None: no private keys in the export directory
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": None,  # None: Secure when BASE_URL is https
    "SESSION_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
}


# Where `portal serve` listens by default: what commands assume when PORTAL_BASE_URL is unset.
FALLBACK_BASE_URL = "http://127.0.0.1:5000"

EMAIL_OFF = "Email is off (PORTAL_SMTP_HOST is not set)"

# Read from the environment exactly as typed, never as JSON (a passphrase `12345678` or
# `true` is text, and so is a path).
TEXT_SETTINGS = (
    "EXPORT_DIR",
    "EXPORT_KEY_PASSPHRASE",
    "MAIL_REPLY_TO",
    "TWO_FACTOR_REQUIRED_ROLES",
)
# An address a header can carry: one local part, one domain with a dot, nothing that could
# break the header or name a second address.
EMAIL_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+\.[A-Za-z0-9-]{2,}")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names it."""


def load_config(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Fill APP.config from every layer, generate missing secrets, then validate."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    for name in TEXT_SETTINGS:
        raw = os.environ.get(f"{ENV_PREFIX}_{name}")
        if raw is not None:
            app.config[name] = raw or None
    if test_config is not None:
        app.config.from_mapping(test_config)
    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'portal.sqlite3'}"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = read_or_create_secret(instance / "secret_key", _new_token)
    app.config["KEY_ENCRYPTION_KEYS"] = _as_list(app.config["KEY_ENCRYPTION_KEYS"]) or [
        read_or_create_secret(instance / "key_encryption_key", _new_kek)
    ]
    app.config["LINK_SIGNING_KEYS"] = _as_list(app.config["LINK_SIGNING_KEYS"]) or [
        read_or_create_secret(instance / "link_signing_key", _new_token)
    ]
    app.config["CONTACT_EMAIL"] = app.config["CONTACT_EMAIL"] or app.config["MAIL_FROM"]
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = str(app.config["BASE_URL"] or "").startswith(
            "https://"
        )
    validate(app.config)
    # The cookie lasts as long as the server's session may.
    app.config["PERMANENT_SESSION_LIFETIME"] = int(app.config["SESSION_LIFETIME_HOURS"]) * 3600


def validate(config: Mapping[str, Any]) -> None:
    """Refuse settings that would fail later in a confusing way."""
    if config["SMTP_TLS"] not in SMTP_TLS_MODES:
        raise ConfigError(f"PORTAL_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}")
    if config["BASE_URL"] and not str(config["BASE_URL"]).startswith(("http://", "https://")):
        raise ConfigError("PORTAL_BASE_URL must start with http:// or https://")
    if not isinstance(config["SMTP_PORT"], int) or not 0 < config["SMTP_PORT"] < 65536:
        raise ConfigError("PORTAL_SMTP_PORT must be a port number")
    smtp_timeout = config["SMTP_TIMEOUT"]
    if (
        isinstance(smtp_timeout, bool)
        or not isinstance(smtp_timeout, int | float)
        or not 0 < smtp_timeout <= 300
    ):
        raise ConfigError("PORTAL_SMTP_TIMEOUT must be a number of seconds from 0 to 300")
    reply_to = config["MAIL_REPLY_TO"]
    if reply_to is not None and (
        not isinstance(reply_to, str) or not EMAIL_ADDRESS.fullmatch(reply_to)
    ):
        raise ConfigError("PORTAL_MAIL_REPLY_TO must be one email address, like it@example.com")
    hsts = config["HSTS_SECONDS"]
    if isinstance(hsts, bool) or not isinstance(hsts, int) or not 0 <= hsts <= 2 * 31_536_000:
        raise ConfigError("PORTAL_HSTS_SECONDS must be a number of seconds from 0 to 63072000")
    if not isinstance(config["PAGE_SIZE"], int) or not 1 <= config["PAGE_SIZE"] <= 500:
        raise ConfigError("PORTAL_PAGE_SIZE must be a number from 1 to 500")
    risk = config["CAMPAIGN_AT_RISK_DAYS"]
    if isinstance(risk, bool) or not isinstance(risk, int) or not 0 <= risk <= 365:
        raise ConfigError("PORTAL_CAMPAIGN_AT_RISK_DAYS must be a number of days from 0 to 365")
    if not is_valid_timezone(config["DEFAULT_TIMEZONE"]):
        raise ConfigError("PORTAL_DEFAULT_TIMEZONE must be an IANA time zone such as Europe/Berlin")
    if not isinstance(config["FOUR_EYES_ALWAYS"], bool):
        raise ConfigError("PORTAL_FOUR_EYES_ALWAYS must be true or false")
    if not isinstance(config["DIGEST_ENABLED"], bool):
        raise ConfigError("PORTAL_DIGEST_ENABLED must be true or false")
    if not isinstance(config["DRAFT_REQUESTS_AUTO_SEND"], bool):
        raise ConfigError("PORTAL_DRAFT_REQUESTS_AUTO_SEND must be true or false")
    try:
        reminder_offsets(config["REMINDER_OFFSETS_DAYS"])
    except ValueError:
        raise ConfigError(
            "PORTAL_REMINDER_OFFSETS_DAYS must be days before the switch from 1 to 365, "
            "separated by commas (such as 14,3,1), or empty for no reminders"
        ) from None
    if not isinstance(config["WEBHOOK_ALLOW_PRIVATE"], bool):
        raise ConfigError("PORTAL_WEBHOOK_ALLOW_PRIVATE must be true or false")
    timeout = config["WEBHOOK_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        raise ConfigError("PORTAL_WEBHOOK_TIMEOUT must be a number of seconds from 0 to 120")
    if len(str(config["SECRET_KEY"])) < 32:
        raise ConfigError("PORTAL_SECRET_KEY must be at least 32 characters")
    if any(len(key) < 32 for key in config["LINK_SIGNING_KEYS"]):
        raise ConfigError("PORTAL_LINK_SIGNING_KEYS must each be at least 32 characters")
    try:
        parse_duration(str(config["LINK_DEFAULT_EXPIRY"]))
    except ValueError as error:
        raise ConfigError(f"PORTAL_LINK_DEFAULT_EXPIRY: {error}") from None
    _validate_export(config)
    _validate_sign_in(config)
    try:
        parse_roles(config["TWO_FACTOR_REQUIRED_ROLES"])
    except ValueError as error:
        raise ConfigError(f"PORTAL_TWO_FACTOR_REQUIRED_ROLES: {error}") from None
    try:
        KeyRing.from_strings(config["KEY_ENCRYPTION_KEYS"])
    except KeyRingError as error:
        raise ConfigError(f"PORTAL_KEY_ENCRYPTION_KEYS: {error}") from None


def _validate_export(config: Mapping[str, Any]) -> None:
    """The export directory's settings: a text path, a long enough passphrase (never shown)."""
    from portal.services.key_export import MIN_EXPORT_PASSPHRASE

    directory, passphrase = config["EXPORT_DIR"], config["EXPORT_KEY_PASSPHRASE"]
    if directory is not None and (not isinstance(directory, str) or not directory.strip()):
        raise ConfigError("PORTAL_EXPORT_DIR must be the path of a folder")
    if passphrase is not None and (
        not isinstance(passphrase, str) or len(passphrase) < MIN_EXPORT_PASSPHRASE
    ):
        raise ConfigError(
            f"PORTAL_EXPORT_KEY_PASSPHRASE must be at least {MIN_EXPORT_PASSPHRASE} characters"
        )


# Each setting's bounds: idle and re-authentication in minutes, lifetime in hours.
SIGN_IN_BOUNDS = {
    "SESSION_IDLE_MINUTES": (1, 90 * 24 * 60),
    "SESSION_LIFETIME_HOURS": (1, 90 * 24),
    "REAUTH_MINUTES": (1, 90 * 24 * 60),
}


def _validate_sign_in(config: Mapping[str, Any]) -> None:
    """Sign-in throttling (rate-limit strings) and session lengths (whole numbers in bounds)."""
    from limits import parse_many

    for name in ("RATELIMIT_LOGIN_ACCOUNT", "RATELIMIT_LOGIN_ADDRESS"):
        try:
            parsed = parse_many(str(config[name]))
        except ValueError:
            parsed = []
        if len(parsed) != 1:
            raise ConfigError(f"PORTAL_{name} must be one limit such as '5 per 15 minutes'")
    for name, (low, high) in SIGN_IN_BOUNDS.items():
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"PORTAL_{name} must be a whole number from {low} to {high}")


def read_or_create_secret(path: Path, make: Any) -> str:
    """Return the secret stored at PATH, creating it (mode 0600) if it does not exist yet.

    The new file is written aside and hard-linked into place, so two processes starting
    together agree on one secret and nobody ever reads a half-written file.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make() + "\n")
        # If another process won the race, its secret is the one to use.
        with contextlib.suppress(FileExistsError):
            os.link(temp_name, path)
    finally:
        os.unlink(temp_name)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"{path} is empty; delete it to have a new secret generated")
    return value


def _new_token() -> str:
    return secrets.token_urlsafe(48)


def _new_kek() -> str:
    return generate_key()


def _as_list(value: Any) -> list[str]:
    """Accept a list, a JSON list or a comma/whitespace separated string."""
    if not value:
        return []
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError("PORTAL_KEY_ENCRYPTION_KEYS and PORTAL_LINK_SIGNING_KEYS are lists")
    return [item.strip() for item in value if item.strip()]
