"""Extension objects, created unbound and attached to an app in create_app."""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from portal.database import Database
from portal.domain.keys import KeyRing

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()

KEYRING_KEY = "portal.keyring"


def init_keyring(app: Flask) -> None:
    """Build the key ring for private keys at rest from the validated settings."""
    app.extensions[KEYRING_KEY] = KeyRing.from_strings(app.config["KEY_ENCRYPTION_KEYS"])


def keyring() -> KeyRing:
    """The current app's key ring."""
    ring: KeyRing = current_app.extensions[KEYRING_KEY]
    return ring
