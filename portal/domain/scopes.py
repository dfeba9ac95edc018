"""What an API token may do: its scopes. Plain Python, used by services, CLI and web."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """One thing an API token may be used for."""

    CONFIG_READ = "config:read"
    KEYS_EXPORT = "keys:export"
