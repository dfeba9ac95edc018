"""The settings the faces read, typed and frozen: built once from app.config by create_app.

Web views, commands and the runner read `settings()`; services receive plain values as
arguments. Flask's own keys (SECRET_KEY, session cookies, ...) stay in app.config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, current_app

from portal.domain.campaigns import reminder_offsets
from portal.domain.roles import parse_roles
from portal.services.mailer import SmtpSettings

SETTINGS_KEY = "portal.settings"


@dataclass(frozen=True)
class Settings:
    """What the portal's faces need from the configuration, read once."""

    base_url: str | None  # None: the address each request reached
    contact_email: str
    admin_email: str
    default_timezone: str
    page_size: int
    certificate_overlap: timedelta  # how long a replaced certificate stays accepted
    four_eyes_always: bool
    link_default_expiry: str
    link_default_max_uploads: int
    ratelimit_invalid_links: str
    smtp: SmtpSettings | None  # None: email is off (PORTAL_SMTP_HOST unset)
    webhook_timeout: float = 10.0  # seconds a whole webhook delivery may take
    webhook_allow_private: bool = False  # let webhooks reach loopback and private addresses
    campaign_at_risk: timedelta = timedelta(days=3)  # not acknowledged this close to T: at risk
    export_dir: str | None = None  # None: the runner keeps no export directory
    reminder_offsets: tuple[int, ...] = (14, 3, 1)  # days before a campaign's T: reminders
    digest_enabled: bool = True  # the staff's daily digest of unreplaced expiring certificates
    draft_requests_auto_send: bool = False  # the runner sends 60-day upload requests itself
    ratelimit_login_account: str = "5 per 15 minutes"  # failed sign-ins per account
    ratelimit_login_address: str = "20 per 15 minutes"  # failed sign-ins per client address
    session_idle: timedelta = timedelta(minutes=30)  # unused this long: the session ends
    session_lifetime: timedelta = timedelta(hours=12)  # after sign-in: the session ends
    reauth_after: timedelta = timedelta(minutes=15)  # sensitive pages ask the password again
    two_factor_required_roles: frozenset[str] = frozenset()  # must sign in with a second factor
    ratelimit_two_factor: str = "10 per 5 minutes"  # code tries per pending sign-in and address
    # None: no private keys in the export directory; never shown in a repr or a log.
    export_key_passphrase: str | None = field(default=None, repr=False)

    @property
    def email_is_on(self) -> bool:
        """Whether a mail relay is configured; without one, emails wait in the outbox."""
        return self.smtp is not None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Read the validated PORTAL_* values (portal.config.load_config ran first)."""
        return cls(
            base_url=str(config["BASE_URL"]) if config["BASE_URL"] else None,
            contact_email=str(config["CONTACT_EMAIL"]),
            admin_email=str(config["ADMIN_EMAIL"]),
            default_timezone=str(config["DEFAULT_TIMEZONE"]),
            page_size=int(config["PAGE_SIZE"]),
            certificate_overlap=timedelta(days=int(config["CERTIFICATE_OVERLAP_DAYS"])),
            four_eyes_always=bool(config["FOUR_EYES_ALWAYS"]),
            link_default_expiry=str(config["LINK_DEFAULT_EXPIRY"]),
            link_default_max_uploads=int(config["LINK_DEFAULT_MAX_UPLOADS"]),
            ratelimit_invalid_links=str(config["RATELIMIT_INVALID_LINKS"]),
            smtp=SmtpSettings.from_config(config) if config.get("SMTP_HOST") else None,
            webhook_timeout=float(config["WEBHOOK_TIMEOUT"]),
            webhook_allow_private=bool(config["WEBHOOK_ALLOW_PRIVATE"]),
            campaign_at_risk=timedelta(days=int(config["CAMPAIGN_AT_RISK_DAYS"])),
            export_dir=config.get("EXPORT_DIR") or None,
            reminder_offsets=reminder_offsets(config["REMINDER_OFFSETS_DAYS"]),
            digest_enabled=bool(config["DIGEST_ENABLED"]),
            draft_requests_auto_send=bool(config["DRAFT_REQUESTS_AUTO_SEND"]),
            two_factor_required_roles=parse_roles(config["TWO_FACTOR_REQUIRED_ROLES"]),
            ratelimit_two_factor=str(config["RATELIMIT_TWO_FACTOR"]),
            export_key_passphrase=config.get("EXPORT_KEY_PASSPHRASE") or None,
            ratelimit_login_account=str(config["RATELIMIT_LOGIN_ACCOUNT"]),
            ratelimit_login_address=str(config["RATELIMIT_LOGIN_ADDRESS"]),
            session_idle=timedelta(minutes=int(config["SESSION_IDLE_MINUTES"])),
            session_lifetime=timedelta(hours=int(config["SESSION_LIFETIME_HOURS"])),
            reauth_after=timedelta(minutes=int(config["REAUTH_MINUTES"])),
        )


def init_settings(app: Flask) -> Settings:
    """Build APP's settings from its config and keep them in app.extensions."""
    built = Settings.from_config(app.config)
    app.extensions[SETTINGS_KEY] = built
    return built


def settings() -> Settings:
    """The current app's settings."""
    found: Settings = current_app.extensions[SETTINGS_KEY]
    return found
