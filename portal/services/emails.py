"""Email wording: one template per email in templates/emails/, rendered with Jinja2 (no Flask).

A template sets its subject with `{% set subject %}...{% endset %}`; everything else it
renders is the body, exactly as written (its last newline included). Where the body says
`{{ link_url }}`, the message's link goes: the outbox signs the URL from the message's
link_id when it sends it, so typed text (a name, a reason) can never become a link.
Filters: `datetime` (2025-01-31 14:00), `date` (2025-01-31), `fingerprint` (colon form).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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


def render(name: str, **context: object) -> Email:
    """Render templates/emails/NAME.txt with CONTEXT."""
    # Stands for the link while rendering; random, so no typed text can contain it.
    slot = f"[link {secrets.token_hex(16)}]"
    module = (
        _environment().get_template(f"emails/{name}.txt").make_module({**context, "link_url": slot})
    )
    subject = getattr(module, "subject", None)
    if subject is None:
        raise ValueError(f"emails/{name}.txt sets no subject")
    if slot in str(subject):
        raise ValueError(f"emails/{name}.txt puts the link in the subject")
    parts = str(module).split(slot)
    if len(parts) > 2:
        raise ValueError(f"emails/{name}.txt places the link more than once")
    body: outbox.Body = parts[0] if len(parts) == 1 else (parts[0], outbox.LINK, parts[1])
    return Email(subject=str(subject), body=body)


def queue(
    session: Session,
    name: str,
    *,
    recipients: Sequence[str],
    dedupe_key: str | None = None,
    link_id: str | None = None,
    **context: object,
) -> OutboxMessage | None:
    """Render templates/emails/NAME.txt with CONTEXT and queue it in the outbox."""
    email = render(name, **context)
    return outbox.queue_email(
        session,
        recipients=recipients,
        subject=email.subject,
        body=email.body,
        dedupe_key=dedupe_key,
        link_id=link_id,
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
