"""The partner blueprint object; its views attach to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("partner", __name__)
