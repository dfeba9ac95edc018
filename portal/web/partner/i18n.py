"""Languages on partner pages: Flask-Babel, the locale chosen per request, times per language.

Partner pages speak the language of the `portal_lang` cookie (set by the page's switcher),
else the best match of the browser's Accept-Language, else English. Every other page (staff,
API, sign-in) stays English whatever the browser asks. The partner's stored language (for
emails) is never changed here: staff decide it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from flask import Flask, request
from flask_babel import Babel, get_locale, refresh
from flask_babel import gettext as _

from portal.domain.certs import Finding
from portal.domain.languages import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    TRANSLATIONS_DIR,
    day_pattern,
    minute_pattern,
)
from portal.domain.languages import supported_language as supported_language
from portal.timeutil import format_in_zone
from portal.web.partner import findings

COOKIE = "portal_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Where the cookie is sent: the partner pages only.
COOKIE_PATH = "/s/"

babel = Babel()


def select_locale() -> str:
    """The request's language: cookie, then Accept-Language, on partner pages; English elsewhere."""
    if not request or request.blueprint != "partner":
        return DEFAULT_LANGUAGE
    chosen = supported_language(request.cookies.get(COOKIE))
    if chosen is not None:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LANGUAGE)


def current_language() -> str:
    """The language of the page being rendered ('en' outside a request)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def init_i18n(app: Flask) -> None:
    """Attach Flask-Babel to APP with the portal's catalogs and the partner time filter."""
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=str(TRANSLATIONS_DIR),
    )
    # Flask-Babel keeps the locale it chose in the app context; a request chooses afresh
    # even when it shares one (tests, commands that render several requests).
    app.before_request(refresh)
    app.add_template_filter(partner_time, "partner_time")
    app.add_template_filter(usage_words, "partner_usage")
    app.add_template_filter(partner_day, "partner_day")
    app.add_template_filter(finding_text, "finding_text")
    app.add_template_global(LANGUAGES, "LANGUAGES")
    app.add_template_global(current_language, "current_language")


def partner_time(moment: datetime | None, zone: str) -> str:
    """MOMENT in ZONE for the page's language, with UTC beside it.

    English reads as everywhere else ('2026-11-27 14:00 CET (13:00 UTC)'); other languages
    use their own date form ('1. März 2027, 10:30 MEZ (09:30 UTC)').
    """
    language = current_language()
    if moment is None or language == DEFAULT_LANGUAGE:
        return format_in_zone(moment, zone)
    utc_moment = moment.astimezone(UTC)
    try:
        tzinfo = ZoneInfo(zone) if zone not in ("", "UTC", "Etc/UTC") else None
    except (ZoneInfoNotFoundError, ValueError):
        tzinfo = None
    if tzinfo is None:
        return format_datetime(
            utc_moment, f"{minute_pattern(language)} 'UTC'", tzinfo=UTC, locale=language
        )
    local = format_datetime(
        utc_moment, f"{minute_pattern(language)} zzz", tzinfo=tzinfo, locale=language
    )
    same_day = utc_moment.astimezone(tzinfo).date() == utc_moment.date()
    pattern = "HH:mm 'UTC'" if same_day else f"{minute_pattern(language)} 'UTC'"
    return f"{local} ({format_datetime(utc_moment, pattern, tzinfo=UTC, locale=language)})"


def usage_words(usage: str) -> str:
    """How a certificate usage reads in a sentence, in the page's language."""
    words = {
        "both": _("signing and encryption"),
        "signing": _("signing"),
        "encryption": _("encryption"),
    }
    return words.get(usage, usage)


def partner_day(day: date | None) -> str:
    """A calendar day in the page's language ('2027-03-01' in English, '1. März 2027' in German)."""
    language = current_language()
    if day is None:
        return "—"
    if language == DEFAULT_LANGUAGE:
        return str(day)
    return format_date(day, day_pattern(language), locale=language)


def finding_text(finding: Finding) -> str:
    """A check finding's message in the page's language (portal/web/partner/findings.py)."""
    return findings.words(finding, value_text, usage_words)


def value_text(value: object) -> str:
    """A value a finding carries, as the page's language writes it: moments in UTC."""
    language = current_language()
    if isinstance(value, datetime):
        return partner_time(value, "UTC")
    if isinstance(value, float):
        # As the domain writes it in English (one decimal), with the language's decimal mark.
        if language == DEFAULT_LANGUAGE:
            return f"{value:.1f}"
        return format_decimal(value, "0.0", locale=language)
    return str(value)
