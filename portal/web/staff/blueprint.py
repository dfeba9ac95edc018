"""The staff blueprint object; route modules attach their views to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("staff", __name__)
