"""Email wording: one template per email in templates/emails/, rendered with Jinja2 (no Flask).

A template sets its subject with `{% set subject %}...{% endset %}`; everything else it
renders is the body, exactly as written (its last newline included). Where the body says
`{{ link_url }}`, the message's link goes: the outbox signs the URL from the message's
link_id when it sends it, so typed text (a name, a reason) can never become a link.
Filters: `datetime` (2025-01-31 14:00), `date` (2025-01-31), `fingerprint` (colon form),
`usage` (a certificate usage in words).

Emails to partners go out in the partner's language (render(..., language=partner.language)):
templates mark their text with `{% trans %}` / `_()` (Jinja's i18n extension) and the words
come from the gettext catalogs in portal/translations, loaded with Babel (no Flask here).
The date filters follow the language too ('1. März 2027, 10:30' in German). English is the
text as written in the templates.

An email may also have templates/emails/NAME.html, its HTML alternative: rendered with the
same context, everything escaped; its `{{ link_url }}` becomes a whole link element (put it
where the link goes, never inside an attribute). Without one, the HTML alternative is
made from the text when the email is sent.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import support
from babel.dates import format_datetime
from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy.orm import Session

from portal.assets import asset_dir
from portal.domain.certs import colon_fingerprint
from portal.domain.languages import (
    DEFAULT_LANGUAGE,
    TRANSLATIONS_DIR,
    day_pattern,
    minute_pattern,
    supported_language,
)
from portal.models import OutboxMessage
from portal.services import outbox


@dataclass(frozen=True)
class Email:
    """A rendered email, ready for outbox.queue_email."""

    subject: str
    body: outbox.Body
    html: outbox.Body | None = None  # from NAME.html, escaped; None: made from the text


def render(name: str, *, language: str = DEFAULT_LANGUAGE, **context: object) -> Email:
    """Render templates/emails/NAME.txt (and NAME.html when there is one) with CONTEXT, in
    LANGUAGE (English when it is not one we ship)."""
    # Stands for the link while rendering; random, so no typed text can contain it.
    slot = f"[link {secrets.token_hex(16)}]"
    environment = _environment()
    context = {**context, **_language_context(supported_language(language) or DEFAULT_LANGUAGE)}
    _localise_campaign_times(context)
    module = environment.get_template(f"emails/{name}.txt").make_module(
        {**context, "link_url": slot}
    )
    subject = getattr(module, "subject", None)
    if subject is None:
        raise ValueError(f"emails/{name}.txt sets no subject")
    if slot in str(subject):
        raise ValueError(f"emails/{name}.txt puts the link in the subject")
    body = _split(str(module), slot, f"emails/{name}.txt")
    html: outbox.Body | None = None
    if f"emails/{name}.html" in _template_names(environment):
        rendered = environment.get_template(f"emails/{name}.html").render(
            {**context, "link_url": slot}
        )
        html = _split(rendered, slot, f"emails/{name}.html")
        if isinstance(html, str) != isinstance(body, str):
            raise ValueError(f"emails/{name}.html and .txt must both place the link, or neither")
    return Email(subject=str(subject), body=body, html=html)


def _split(rendered: str, slot: str, where: str) -> outbox.Body:
    parts = rendered.split(slot)
    if len(parts) > 2:
        raise ValueError(f"{where} places the link more than once")
    return parts[0] if len(parts) == 1 else (parts[0], outbox.LINK, parts[1])


def _template_names(environment: Environment) -> frozenset[str]:
    """The email templates there are (an .html one is optional)."""
    loader = environment.loader
    if isinstance(loader, FileSystemLoader):
        return _folder_names(tuple(str(path) for path in loader.searchpath))
    return frozenset(environment.list_templates())


@functools.cache
def _folder_names(folders: tuple[str, ...]) -> frozenset[str]:
    return frozenset(
        f"emails/{path.name}" for folder in folders for path in (Path(folder) / "emails").glob("*")
    )


def queue(
    session: Session,
    name: str,
    *,
    recipients: Sequence[str],
    dedupe_key: str | None = None,
    link_id: str | None = None,
    attachments: Sequence[outbox.Attachment] = (),
    language: str = DEFAULT_LANGUAGE,
    **context: object,
) -> OutboxMessage | None:
    """Render templates/emails/NAME.txt with CONTEXT in LANGUAGE and queue it in the outbox,
    with ATTACHMENTS."""
    email = render(name, language=language, **context)
    return outbox.queue_email(
        session,
        recipients=recipients,
        subject=email.subject,
        body=email.body,
        dedupe_key=dedupe_key,
        link_id=link_id,
        html=email.html,
        attachments=attachments,
    )


class Addressee(Protocol):
    """Whom partner emails go to: a partner's contacts, in its language."""

    # Read-only properties, so a model's mapped columns and plain objects both qualify.
    @property
    def contact_emails(self) -> Sequence[str]:
        """The addresses to write to."""

    @property
    def language(self) -> str:
        """The language code the partner reads."""


def queue_by_language(
    session: Session,
    name: str,
    partners: Iterable[Addressee],
    *,
    dedupe_key: str,
    **context: object,
) -> list[OutboxMessage]:
    """Queue NAME to the contacts of PARTNERS, one message per language, each in its language.

    For a notice that goes to every partner of an identity at once (certificate_in_force):
    a German partner reads it in German, the others as before. The English message keeps
    DEDUPE_KEY; another language's adds ':<code>' to it.
    """
    by_language: dict[str, set[str]] = {}
    for partner in partners:
        language = supported_language(partner.language) or DEFAULT_LANGUAGE
        by_language.setdefault(language, set()).update(partner.contact_emails)
    queued = []
    for language, recipients in sorted(by_language.items()):
        if not recipients:
            continue
        key = dedupe_key if language == DEFAULT_LANGUAGE else f"{dedupe_key}:{language}"
        email = render(name, language=language, **context)
        message = outbox.queue_email(
            session, recipients=sorted(recipients), subject=email.subject, body=email.body,
            html=email.html, dedupe_key=key,
        )  # fmt: skip
        if message is not None:
            queued.append(message)
    return queued


def build_environment(loader: BaseLoader) -> Environment:
    """The Jinja2 environment emails are rendered in, reading templates from LOADER."""
    environment = Environment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        # Plain text (.txt) is not escaped: "&" stays "&". An .html email would be.
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    # English until a render passes its language's callables in the context.
    environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    environment.filters["datetime"] = _minute
    environment.filters["date"] = _day
    environment.filters["fingerprint"] = colon_fingerprint
    environment.filters["usage"] = _usage
    return environment


LANGUAGE_KEY = "email_language"


@functools.cache
def translations(language: str) -> support.NullTranslations:
    """The compiled catalog of LANGUAGE (portal/translations); English has none."""
    if language == DEFAULT_LANGUAGE:
        return support.NullTranslations()
    return support.Translations.load(str(TRANSLATIONS_DIR), [language], domain="messages")


def _language_context(language: str) -> dict[str, object]:
    """What a render in LANGUAGE adds to its context: the gettext callables, the language."""
    catalog = translations(language)

    @pass_context
    def gettext(context: Context, message: str, **variables: object) -> str:
        text = catalog.gettext(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704  # nosec B704  # our catalog's text; variables escaped by %
        return text % variables

    @pass_context
    def ngettext(
        context: Context, singular: str, plural: str, count: int, **variables: object
    ) -> str:
        text = catalog.ngettext(singular, plural, count)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704  # nosec B704  # our catalog's text; variables escaped by %
        return text % {"num": count, **variables}

    return {"gettext": gettext, "_": gettext, "ngettext": ngettext, LANGUAGE_KEY: language}


def _localise_campaign_times(context: dict[str, object]) -> None:
    """In a language other than English, campaign emails' times in that language's form."""
    language = context[LANGUAGE_KEY]
    moment, partner = context.get("activate_at"), context.get("partner")
    if language == DEFAULT_LANGUAGE or not isinstance(moment, datetime) or partner is None:
        return
    try:
        zone = ZoneInfo(str(getattr(partner, "timezone", "UTC") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    context["local_time"] = format_datetime(
        moment, f"{minute_pattern(str(language))} zzz", tzinfo=zone, locale=str(language)
    )
    context["utc_time"] = format_datetime(
        moment, minute_pattern(str(language)), tzinfo=UTC, locale=str(language)
    )


@functools.cache
def _environment() -> Environment:
    return build_environment(FileSystemLoader(asset_dir("templates")))


@pass_context
def _minute(context: Context, moment: datetime) -> str:
    language = context.get(LANGUAGE_KEY, DEFAULT_LANGUAGE)
    if language == DEFAULT_LANGUAGE:
        return f"{moment:%Y-%m-%d %H:%M}"
    return format_datetime(moment, minute_pattern(language), tzinfo=UTC, locale=language)


@pass_context
def _day(context: Context, moment: datetime) -> str:
    language = context.get(LANGUAGE_KEY, DEFAULT_LANGUAGE)
    if language == DEFAULT_LANGUAGE:
        return f"{moment:%Y-%m-%d}"
    return format_datetime(moment, day_pattern(language), tzinfo=UTC, locale=language)


@pass_context
def _usage(context: Context, usage: str) -> str:
    """A certificate usage in words ('signing and encryption' for 'both', never the code)."""
    catalog = translations(context.get(LANGUAGE_KEY, DEFAULT_LANGUAGE))
    words = {
        "both": catalog.gettext("signing and encryption"),
        "signing": catalog.gettext("signing"),
        "encryption": catalog.gettext("encryption"),
    }
    return words.get(usage, usage)
