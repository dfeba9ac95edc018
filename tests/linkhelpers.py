"""Helpers for the share-link tests: a link and its token, partner certificates, what a
browser sends for a form, and look-ups of what a request stored.

Time is moved with the `clock` fixture (tests/conftest.py), never by sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from io import BytesIO
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain.tokens import LinkSigner
from portal.extensions import link_signer
from portal.models import (
    AuditEvent,
    ChangeWindow,
    OutboxMessage,
    Partner,
    ShareLink,
    Submission,
)
from portal.services import links
from portal.timeutil import utcnow
from tests import certfactory, factories

KIB = 1024
BROWSER = "Mozilla/5.0 (PartnerBrowser 1.0)"
# Not a certificate in any format: the start of a PNG image.
GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 3

# Windows must lie within two years: next year is always in the future and within that.
NEXT_YEAR = utcnow().year + 1

# Typed by a partner where text goes; it must come back as text.
SCRIPT = "<script>alert(1)</script>"


@dataclass
class Shared:
    """A partner, one of its links and the link's token."""

    partner: Partner
    link: ShareLink
    token: str

    @property
    def page(self) -> str:
        return f"/s/{self.token}"


def share(
    session: Session,
    partner: Partner | None = None,
    *,
    now: datetime | None = None,
    signer: LinkSigner | None = None,
    **options: Any,
) -> Shared:
    """A link (download and upload, 14 days, 3 uploads unless told) and its token."""
    partner = partner or factories.partner(session)
    settings: dict[str, Any] = {
        "can_download": True,
        "can_upload": True,
        "lifetime": timedelta(days=14),
        "max_uploads": 3,
    }
    settings.update(options)
    link, token = links.create_link(
        session,
        factories.ACTOR,
        signer or link_signer(),
        partner,
        now=now or utcnow(),
        **settings,
    )
    return Shared(partner, link, token)


def partner_cert(
    *, key_size: int = 3072, days: int = 400, usage_flags: tuple[str, ...] = certfactory.BOTH_KU
) -> x509.Certificate:
    """A partner certificate; RSA 3072, 400 days and both key usages raise no finding."""
    cert, _key = certfactory.make_cert(
        now=utcnow(),
        days=days,
        key=certfactory.rsa_key(key_size),
        usage_flags=usage_flags,
        subject=certfactory.name("GLOBEXAS2", "Globex Corp"),
    )
    return cert


def sha256_of(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def audit_events(
    session: Session, action: str, link: ShareLink | None = None, partner: Partner | None = None
) -> list[AuditEvent]:
    """The events ACTION of this test, about LINK or PARTNER when given."""
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if partner is not None:
        stmt = stmt.where(AuditEvent.object_id == str(partner.id))
    found = session.scalars(stmt).all()
    return [e for e in found if link is None or e.details.get("link_id") == link.id]


def windows_of(session: Session, partner: Partner) -> list[ChangeWindow]:
    return list(
        session.scalars(
            select(ChangeWindow)
            .where(ChangeWindow.partner_id == partner.id)
            .order_by(ChangeWindow.id)
        )
    )


def outbox_for(session: Session, link: ShareLink) -> list[OutboxMessage]:
    """Queued messages that carry LINK."""
    return list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.link_id == link.id).order_by(OutboxMessage.id)
        )
    )


def submissions_of(session: Session, partner: Partner) -> list[Submission]:
    return list(
        session.scalars(
            select(Submission).where(Submission.partner_id == partner.id).order_by(Submission.id)
        )
    )


def uploads_used(session: Session, link: ShareLink) -> int:
    session.refresh(link)
    return link.uploads_used


class _FormReader(HTMLParser):
    """Collects what a browser would send for the form whose action is ACTION."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.found = False
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and a.get("action") == self.action:
            self.inside = self.found = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[name] = a.get("value") or "on"
            elif kind not in ("file", "submit", "button"):
                self.fields[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            if chosen:
                self.fields[self._select] = chosen[0]
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields[self._textarea] = self._text
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data


def browser_form(page: str, action: str) -> dict[str, Any]:
    """The fields a browser submits for the form posting to ACTION, as the page sets them."""
    reader = _FormReader(action)
    reader.feed(page)
    assert reader.found, f"no form posting to {action}"
    return dict(reader.fields)


def upload_fields(shared: Shared, client: Any, **fields: Any) -> dict[str, Any]:
    """The upload form as the partner page fills it, with FIELDS typed in."""
    page = client.get(shared.page).get_data(as_text=True)
    data = browser_form(page, f"{shared.page}/upload")
    data.update(fields)
    return data


def typed(**fields: Any) -> dict[str, Any]:
    """The upload form as a browser sends it when only FIELDS were filled in."""
    data: dict[str, Any] = {
        "pasted": "",
        "usage": "both",
        "window_date": "",
        "window_time": "",
        "window_timezone": "Europe/Berlin",
        "contact_name": "",
        "contact_email": "",
    }
    data.update(fields)
    return data


def pem_file(data: bytes, name: str = "partner.pem") -> tuple[BytesIO, str]:
    return BytesIO(data), name


def private_key() -> bytes:
    return certfactory.key_bytes(certfactory.rsa_key(2048))


def forged(token: str) -> str:
    """The token with one character in the middle of its signature changed.

    Not the last character: it carries two unused bits of the base64 text, so some changes
    there decode to the very same signature and the token still works.
    """
    link_id, signature = token.rsplit(".", 1)
    new = "A" if signature[10] != "A" else "B"
    return f"{link_id}.{signature[:10]}{new}{signature[11:]}"
