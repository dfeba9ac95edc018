"""Where templates/ and static/ are: top level in a checkout, packed into a wheel otherwise."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """Top-level NAME/ (templates, static) in a checkout; the copy packed into a wheel otherwise."""
    packed = _PACKAGE_DIR / f"_{name}"
    return packed if packed.is_dir() else _PACKAGE_DIR.parent / name
