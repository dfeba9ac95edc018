"""The auth blueprint object; its views attach to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
