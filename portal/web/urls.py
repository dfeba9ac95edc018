"""The public address links are built on: configured, or the one this request reached."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

from portal.settings import settings


def base_url() -> str:
    """PORTAL_BASE_URL, or else the scheme, host and port this request was served on."""
    configured = settings().base_url
    return str(configured or request.host_url).rstrip("/")


def host_name() -> str:
    """The host name of base_url(), for identifiers such as calendar UIDs."""
    return urlsplit(base_url()).hostname or "portal"
