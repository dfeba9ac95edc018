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


# How each language writes a day (Babel/CLDR patterns); times follow as ", HH:mm".
DAY_PATTERNS: dict[str, str] = {"de": "d. MMMM y"}


def day_pattern(language: str) -> str:
    """The Babel pattern of a calendar day in LANGUAGE ('1. März 2027' in German)."""
    return DAY_PATTERNS.get(language, "d MMMM y")


def minute_pattern(language: str) -> str:
    """The Babel pattern of a moment to the minute in LANGUAGE ('1. März 2027, 10:30')."""
    return f"{day_pattern(language)}, HH:mm"
