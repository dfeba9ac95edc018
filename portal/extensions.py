"""Extension objects, created unbound and attached to an app in create_app."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from portal.database import Database
from portal.domain.keys import KeyRing
from portal.domain.tokens import LinkSigner

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
# Limits apply where a view asks for them (invalid link tokens); storage comes from
# RATELIMIT_STORAGE_URI so several processes can share it (Redis).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

KEYRING_KEY = "portal.keyring"
SIGNER_KEY = "portal.link_signer"


def init_secrets(app: Flask) -> None:
    """Build the key ring (private keys at rest) and the link signer from the settings."""
    app.extensions[KEYRING_KEY] = KeyRing.from_strings(app.config["KEY_ENCRYPTION_KEYS"])
    app.extensions[SIGNER_KEY] = LinkSigner(app.config["LINK_SIGNING_KEYS"])


def link_signer() -> LinkSigner:
    """The current app's link signer."""
    signer: LinkSigner = current_app.extensions[SIGNER_KEY]
    return signer


def keyring() -> KeyRing:
    """The current app's key ring."""
    ring: KeyRing = current_app.extensions[KEYRING_KEY]
    return ring
