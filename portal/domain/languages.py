"""The languages partner pages and partner emails are written in."""

from __future__ import annotations

from pathlib import Path

DEFAULT_LANGUAGE = "en"
# English is the source text; every other language has a catalog under portal/translations.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
LANGUAGE_CHOICES = [(code, name) for code, name in LANGUAGES.items()]

# Where the compiled catalogs are (portal/translations/<code>/LC_MESSAGES/messages.mo).
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def supported_language(code: str | None) -> str | None:
    """CODE when it names a language we ship (any letter case), None otherwise."""
    if not code:
        return None
    folded = code.strip().lower()
    return folded if folded in LANGUAGES else None
