"""Extension objects, created unbound and attached to an app in create_app."""

from __future__ import annotations

from flask_login import LoginManager
from flask_wtf import CSRFProtect

from portal.database import Database

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
