"""Email wording: one template per email in templates/emails/, rendered with Jinja2 (no Flask).

A template sets its subject with `{% set subject %}...{% endset %}`; everything else it
renders is the body, exactly as written (its last newline included). Where the body says
`{{ link_url }}`, the message's link goes: the outbox signs the URL from the message's
link_id when it sends it, so typed text (a name, a reason) can never become a link.
Filters: `datetime` (2025-01-31 14:00), `date` (2025-01-31), `fingerprint` (colon form).

An email may also have templates/emails/NAME.html, its HTML alternative: rendered with the
same context, everything escaped; its `{{ link_url }}` becomes a whole link element (put it
where the link goes, never inside an attribute). Without one, the HTML alternative is
made from the text when the email is sent.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from portal.assets import asset_dir
from portal.domain.certs import colon_fingerprint
from portal.models import OutboxMessage
from portal.services import outbox


@dataclass(frozen=True)
class Email:
    """A rendered email, ready for outbox.queue_email."""

    subject: str
    body: outbox.Body
    html: outbox.Body | None = None  # from NAME.html, escaped; None: made from the text


def render(name: str, **context: object) -> Email:
    """Render templates/emails/NAME.txt (and NAME.html when there is one) with CONTEXT."""
    # Stands for the link while rendering; random, so no typed text can contain it.
    slot = f"[link {secrets.token_hex(16)}]"
    environment = _environment()
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
    **context: object,
) -> OutboxMessage | None:
    """Render templates/emails/NAME.txt with CONTEXT and queue it in the outbox, with
    ATTACHMENTS."""
    email = render(name, **context)
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


def build_environment(loader: BaseLoader) -> Environment:
    """The Jinja2 environment emails are rendered in, reading templates from LOADER."""
    environment = Environment(
        loader=loader,
        # Plain text (.txt) is not escaped: "&" stays "&". An .html email would be.
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["datetime"] = _minute
    environment.filters["date"] = _day
    environment.filters["fingerprint"] = colon_fingerprint
    return environment


@functools.cache
def _environment() -> Environment:
    return build_environment(FileSystemLoader(asset_dir("templates")))


def _minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"
