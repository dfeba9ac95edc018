"""Share links end to end: the partner page, downloads, uploads (page and machine), change
windows, acknowledgements, staff link management and the `portal link` commands.

Time is moved by patching `utcnow` where the partner views read it, never by sleeping.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs7
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app
from portal.domain.tokens import LinkSigner
from portal.extensions import db, keyring, link_signer
from portal.models import (
    Acknowledgement,
    AuditEvent,
    ChangeWindow,
    OutboxMessage,
    Partner,
    ShareLink,
    Submission,
)
from portal.services import links, outbox
from portal.services.certificates import colon_fingerprint
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories
from tests.conftest import test_settings

KIB = 1024
BROWSER = "Mozilla/5.0 (PartnerBrowser 1.0)"
# Not a certificate in any format: the start of a PNG image.
GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 3

# Windows must lie within two years: next year is always in the future and within that.
NEXT_YEAR = utcnow().year + 1


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


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


def move_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Make the partner views believe it is MOMENT."""
    monkeypatch.setattr("portal.web.partner.views.utcnow", lambda: moment)


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


# ---------------------------------------------------------------------------
# 1. The partner page
# ---------------------------------------------------------------------------


def test_page_shows_who_asks_what_and_our_certificates(client, session) -> None:
    identity = factories.identity(session, organisation="Acme Widgets")
    partner = factories.partner(session, identity, name="Globex Trading", timezone="Europe/Paris")
    now = utcnow()
    ring = keyring()
    in_force = factories.identity_certificate(session, ring, identity)
    in_force.activate_at = now - timedelta(hours=1)
    upcoming = factories.identity_certificate(session, ring, identity)
    upcoming.activate_at = now + timedelta(days=10)
    session.flush()
    pending = factories.identity_certificate(session, ring, identity)
    other = factories.identity_certificate(session, ring, factories.identity(session))
    shared = share(session, partner)

    response = client.get(shared.page)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Acme Widgets" in page
    assert f"<code>{identity.as2_id}</code>" in page
    assert "Globex Trading" in page
    assert f"<code>{partner.as2_id}</code>" in page
    assert format_in_zone(shared.link.expires_at, "Europe/Paris") in page
    for certificate in (in_force, upcoming, pending):
        assert colon_fingerprint(certificate.sha256) in page
        assert colon_fingerprint(certificate.sha1) in page
        assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", colon_fingerprint(certificate.sha256))
    assert other.sha256 not in page
    assert colon_fingerprint(other.sha256) not in page
    badges = re.findall(r'<span class="badge[^"]*">\s*([^<]*?)\s*</span>', page)
    assert badges == [
        "in force",
        f"upcoming on {format_in_zone(upcoming.activate_at, 'Europe/Paris')}",
        "date to be agreed",
    ]
    # The four steps, in order.
    steps = [
        page.index(f'href="#{anchor}"') for anchor in ("ours", "upload", "window", "installed")
    ]
    assert steps == sorted(steps)


def test_get_counts_the_visit_consumes_nothing_and_is_audited(client, session) -> None:
    shared = share(session, max_uploads=2)

    for _ in range(2):
        response = client.get(shared.page, headers={"User-Agent": BROWSER})
        assert response.status_code == 200

    session.refresh(shared.link)
    assert shared.link.opened_count == 2
    assert shared.link.last_opened_at is not None
    assert shared.link.uploads_used == 0
    assert shared.link.download_count == 0
    opened = audit_events(session, "link.opened", shared.link)
    assert len(opened) == 2
    assert {(e.client_address, e.user_agent) for e in opened} == {("127.0.0.1", BROWSER)}
    assert opened[0].object_id == str(shared.partner.id)
    assert shared.link.id in opened[0].actor
    assert "2 uploads left" in response.get_data(as_text=True)


def test_page_headers_and_nothing_from_another_origin(app, client, session) -> None:
    shared = share(session)
    factories.identity_certificate(session, keyring(), shared.partner.identity)

    response = client.get(shared.page)

    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    for tag, attribute in (("script", "src"), ("link", "href"), ("img", "src")):
        for element in re.findall(rf"<{tag}\b[^>]*>", page):
            value = re.search(rf'{attribute}="([^"]*)"', element)
            if value is not None:
                assert value.group(1).startswith("/"), element
                assert not value.group(1).startswith("//"), element
    for attribute in re.findall(r'(?:src|href|action)="([^"]*)"', page):
        assert not attribute.startswith(("http:", "https:", "//")), attribute
    # The only absolute URL is our own, in the curl line.
    absolute = re.findall(r"https?://[^\s\"'<]+", page)
    assert absolute
    assert all(url.startswith(app.config["BASE_URL"] + "/s/") for url in absolute)


# ---------------------------------------------------------------------------
# 2. Downloads
# ---------------------------------------------------------------------------


def _parse(fmt: str, content: bytes) -> x509.Certificate:
    if fmt == "pem":
        return x509.load_pem_x509_certificate(content)
    if fmt == "cer":
        return x509.load_der_x509_certificate(content)
    (only,) = pkcs7.load_der_pkcs7_certificates(content)
    return only


@pytest.mark.parametrize("fmt", ["pem", "cer", "p7c"])
def test_download_our_certificate(client, session, fmt: str) -> None:
    shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)

    response = client.get(
        f"{shared.page}/certificates/{ours.sha256}.{fmt}", headers={"User-Agent": BROWSER}
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    cert = _parse(fmt, response.data)
    assert sha256_of(cert) == ours.sha256
    disposition = response.headers["Content-Disposition"]
    stem = f"{shared.partner.identity.as2_id}-both-{ours.sha256[:16]}"
    assert disposition == f'attachment; filename="{stem}.{fmt}"'
    (event,) = audit_events(session, "link.downloaded", shared.link)
    assert event.details["format"] == fmt
    assert event.details["certificate_id"] == ours.id
    assert (event.client_address, event.user_agent) == ("127.0.0.1", BROWSER)
    session.refresh(shared.link)
    assert shared.link.download_count == 1
    assert shared.link.uploads_used == 0


def test_download_of_anything_not_offered_is_404(client, session) -> None:
    shared = share(session)
    ring = keyring()
    ours = factories.identity_certificate(session, ring, shared.partner.identity)
    withdrawn = factories.identity_certificate(session, ring, shared.partner.identity)
    withdrawn.withdrawn_at = utcnow()
    another_identity = factories.identity_certificate(session, ring, factories.identity(session))
    partner_b = factories.partner(session)
    share(session, partner_b)
    partner_b_ours = factories.identity_certificate(session, ring, partner_b.identity)
    session.flush()
    certificates = f"{shared.page}/certificates"
    paths = {
        "unknown": f"{certificates}/{secrets.token_hex(32)}.pem",
        "not hex": f"{certificates}/..%2F..%2Fetc%2Fpasswd.pem",
        "another identity's": f"{certificates}/{another_identity.sha256}.pem",
        "partner B's (cross-partner)": f"{certificates}/{partner_b_ours.sha256}.pem",
        "withdrawn": f"{certificates}/{withdrawn.sha256}.pem",
        "unknown format": f"{certificates}/{ours.sha256}.der",
    }

    for case, path in paths.items():
        assert client.get(path).status_code == 404, case

    assert audit_events(session, "link.downloaded", partner=shared.partner) == []
    session.refresh(shared.link)
    assert shared.link.download_count == 0
    assert client.get(f"{certificates}/{ours.sha256}.pem").status_code == 200


def test_download_only_link_offers_downloads_and_no_upload(client, session) -> None:
    shared = share(session, can_upload=False, max_uploads=0)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)

    page = client.get(shared.page).get_data(as_text=True)

    for fmt in ("pem", "cer", "p7c"):
        assert f'href="{shared.page}/certificates/{ours.sha256}.{fmt}"' in page
    assert 'id="upload"' not in page
    assert f'action="{shared.page}/upload"' not in page
    assert "curl" not in page


def test_upload_only_link_offers_no_download(client, session) -> None:
    shared = share(session, can_download=False)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)

    page = client.get(shared.page).get_data(as_text=True)

    assert 'id="ours"' not in page
    assert "/certificates/" not in page
    assert colon_fingerprint(ours.sha256) not in page
    assert f'action="{shared.page}/upload"' in page
    response = client.get(f"{shared.page}/certificates/{ours.sha256}.pem")
    assert response.status_code == 404
    assert audit_events(session, "link.downloaded", shared.link) == []


# ---------------------------------------------------------------------------
# 3. Tokens that do not work
# ---------------------------------------------------------------------------


def _forged(token: str) -> str:
    """The token with one character in the middle of its signature changed.

    Not the last character: it carries two unused bits of the base64 text, so some changes
    there decode to the very same signature and the token still works.
    """
    link_id, signature = token.rsplit(".", 1)
    new = "A" if signature[10] != "A" else "B"
    return f"{link_id}.{signature[:10]}{new}{signature[11:]}"


@pytest.mark.parametrize(
    "kind",
    [
        "forged signature",
        "other key",
        "random",
        "swapped id",
        "changed link id",
    ],
)
def test_tokens_we_did_not_issue_answer_404_without_revealing_anything(
    app, client, session, kind: str
) -> None:
    shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)
    other = share(session)
    token = {
        "forged signature": _forged(shared.token),
        "other key": LinkSigner(["y" * 40]).sign(shared.link.id),
        "random": secrets.token_urlsafe(40),
        # One link's id with another link's signature.
        "swapped id": shared.link.id + "." + other.token.rsplit(".", 1)[1],
        "changed link id": ("A" if shared.token[0] != "A" else "B") + shared.token[1:],
    }[kind]

    for path in (f"/s/{token}", f"/s/{token}/certificates/{ours.sha256}.pem"):
        response = client.get(path)
        assert response.status_code == 404, path
        body = response.get_data(as_text=True)
        for secret in (shared.partner.name, shared.partner.as2_id, shared.partner.identity.as2_id):
            assert secret not in body
        assert response.headers["Referrer-Policy"] == "no-referrer"
    response = client.post(f"/s/{token}/certificate", data=certfactory.pem(partner_cert()))
    assert response.status_code == 404
    assert shared.partner.name not in response.get_data(as_text=True)
    session.refresh(shared.link)
    assert shared.link.opened_count == 0
    assert audit_events(session, "link.opened", partner=shared.partner) == []


@pytest.mark.parametrize("how", ["clock moved past expiry", "created already expired", "revoked"])
def test_expired_or_revoked_link_answers_410_with_whom_to_contact(
    app, client, session, monkeypatch, how: str
) -> None:
    app.config["CONTACT_EMAIL"] = "certificates@acme.example"
    now = utcnow()
    if how == "created already expired":
        shared = share(session, now=now - timedelta(days=15))
    else:
        shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)
    if how != "created already expired":
        assert client.get(shared.page).status_code == 200  # it worked until now
    if how == "clock moved past expiry":
        move_clock(monkeypatch, shared.link.expires_at + timedelta(seconds=1))
    elif how == "revoked":
        links.revoke(session, factories.ACTOR, shared.link, now)
    session.refresh(shared.link)
    opened_before = shared.link.opened_count
    pem = certfactory.pem(partner_cert())

    answers = [
        client.get(shared.page),
        client.get(f"{shared.page}/certificates/{ours.sha256}.pem"),
        client.post(f"{shared.page}/upload", data={"pasted": pem.decode(), "usage": "both"}),
        client.post(f"{shared.page}/window", data={"date": f"{NEXT_YEAR}-01-01", "time": "10:00"}),
        client.post(f"{shared.page}/acknowledge", data={}),
        client.post(f"{shared.page}/certificate", data=pem),
    ]

    for response in answers:
        assert response.status_code == 410, response.request.path
        body = response.get_data(as_text=True)
        assert "certificates@acme.example" in body
        for secret in (shared.partner.name, shared.partner.as2_id, shared.partner.identity.as2_id):
            assert secret not in body
        assert ours.sha256 not in body
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    assert answers[-1].is_json
    assert "certificates@acme.example" in answers[-1].get_json()["error"]
    assert submissions_of(session, shared.partner) == []
    session.refresh(shared.link)
    assert shared.link.opened_count == opened_before
    assert shared.link.download_count == 0
    assert windows_of(session, shared.partner) == []
    assert audit_events(session, "link.downloaded", shared.link) == []


# ---------------------------------------------------------------------------
# 4. Upload through the page
# ---------------------------------------------------------------------------


def test_clean_upload_is_received_counted_and_announced(client, session, make_user) -> None:
    approver = make_user("approver")
    shared = share(session, max_uploads=3)
    cert = partner_cert()
    data = upload_fields(
        shared,
        client,
        certificate=pem_file(certfactory.pem(cert)),
        usage="both",
        window_date=f"{NEXT_YEAR}-07-10",
        window_time="09:30",
        window_timezone="America/Chicago",
        contact_name="Grace Hopper",
        contact_email="grace@globex.example",
    )

    response = client.post(f"{shared.page}/upload", data=data, headers={"User-Agent": BROWSER})

    assert response.status_code == 302
    (submission,) = submissions_of(session, shared.partner)
    assert response.location.endswith(f"{shared.page}?received={submission.id}#upload")
    assert submission.status == "received"
    assert submission.usage == "both"
    assert submission.sha256 == sha256_of(cert)
    assert submission.link_id == shared.link.id
    assert submission.contact_name == "Grace Hopper"
    assert submission.contact_email == "grace@globex.example"
    # 09:30 CDT (UTC-5 in March after the switch on the 8th) is 14:30 UTC.
    assert submission.proposed_window_start == datetime(NEXT_YEAR, 7, 10, 14, 30, tzinfo=UTC)
    assert submission.proposed_timezone == "America/Chicago"
    assert uploads_used(session, shared.link) == 1
    (event,) = audit_events(session, "submission.received", shared.link)
    assert event.details["submission_id"] == submission.id
    assert (event.client_address, event.user_agent) == ("127.0.0.1", BROWSER)
    messages = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"submission-received:{submission.id}"
        )
    ).all()
    assert len(messages) == 1
    assert approver.email in messages[0].recipients
    assert colon_fingerprint(submission.sha256) in messages[0].body

    page = client.get(response.location).get_data(as_text=True)
    assert f"submission #{submission.id}" in page
    assert f"<code>{colon_fingerprint(sha256_of(cert))}</code>" in page
    assert "2 uploads left" in page


def test_warnings_need_a_tick_before_anything_is_stored(client, session) -> None:
    shared = share(session)
    cert = partner_cert(key_size=2048)
    first = client.post(
        f"{shared.page}/upload",
        data=upload_fields(
            shared,
            client,
            certificate=pem_file(certfactory.pem(cert)),
            usage="signing",
            window_date=f"{NEXT_YEAR}-01-15",
            window_time="09:30",
            window_timezone="America/Chicago",
            contact_name="Grace Hopper",
            contact_email="grace@globex.example",
        ),
    )

    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "Please confirm" in page
    assert "The RSA key has 2048 bits" in page
    assert 'name="confirm_warnings" type="checkbox"' in page
    assert colon_fingerprint(sha256_of(cert)) in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0
    confirm = browser_form(page, f"{shared.page}/upload")
    assert confirm["carried"]

    unticked = client.post(f"{shared.page}/upload", data=confirm)
    assert unticked.status_code == 422
    assert "Please confirm" in unticked.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []

    ticked = client.post(f"{shared.page}/upload", data={**confirm, "confirm_warnings": "y"})

    assert ticked.status_code == 302, ticked.get_data(as_text=True)
    (submission,) = submissions_of(session, shared.partner)
    assert submission.sha256 == sha256_of(cert)
    assert "rsa_2048" in {f["code"] for f in submission.report["findings"]}
    # What was typed in the first step reaches the stored submission.
    assert submission.usage == "signing"
    assert submission.proposed_window_start == datetime(NEXT_YEAR, 1, 15, 15, 30, tzinfo=UTC)
    assert submission.proposed_timezone == "America/Chicago"
    assert (submission.contact_name, submission.contact_email) == (
        "Grace Hopper",
        "grace@globex.example",
    )
    assert uploads_used(session, shared.link) == 1


def test_warnings_confirmed_in_one_post_are_stored(client, session) -> None:
    shared = share(session)
    cert = partner_cert(key_size=2048)
    response = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(cert)), confirm_warnings="y"),
    )
    assert response.status_code == 302
    assert len(submissions_of(session, shared.partner)) == 1


def _private_key() -> bytes:
    return certfactory.key_bytes(certfactory.rsa_key(2048))


@pytest.mark.parametrize(
    ("case", "fields", "code", "says"),
    [
        (
            "private key file",
            lambda: {"certificate": pem_file(_private_key(), "partner.key")},
            "private_key",
            "Never send a private key",
        ),
        (
            "private key pasted",
            lambda: {"pasted": _private_key().decode()},
            "private_key",
            "Never send a private key",
        ),
        (
            "certificate and key together",
            lambda: {"pasted": (certfactory.pem(partner_cert()) + _private_key()).decode()},
            "private_key",
            "Never send a private key",
        ),
        (
            "garbage",
            lambda: {"certificate": pem_file(GARBAGE, "partner.cer")},
            "unreadable",
            "We could not read this file as a certificate",
        ),
        (
            "signing-only certificate for encryption",
            lambda: {
                "certificate": pem_file(
                    certfactory.pem(partner_cert(usage_flags=certfactory.SIGNING_KU))
                ),
                "usage": "encryption",
            },
            "key_usage_incompatible",
            "does not allow it to be used for encryption",
        ),
    ],
)
def test_errors_block_the_upload_but_the_refusal_is_audited(
    client, session, case: str, fields: Any, code: str, says: str
) -> None:
    shared = share(session)
    session.commit()  # so that rolling back below can only undo what the request left uncommitted

    response = client.post(f"{shared.page}/upload", data=typed(**fields()))

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "We cannot accept this file" in page
    assert says in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0
    session.rollback()  # drop anything the refused request did not commit
    (event,) = audit_events(session, "submission.refused", shared.link)
    assert code in event.details["codes"]
    assert submissions_of(session, shared.partner) == []


def test_a_pasted_private_key_is_not_written_back_into_the_page(client, session) -> None:
    """Regression: the refused page used to echo the pasted key into its textarea."""
    shared = share(session)
    key = _private_key().decode()

    response = client.post(f"{shared.page}/upload", data=typed(pasted=key))

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Never send a private key" in page
    assert "PRIVATE KEY-----" not in page
    assert key.splitlines()[1] not in page


def test_too_large_upload_is_413_with_a_readable_page(client, session) -> None:
    shared = share(session)
    big = certfactory.pem(partner_cert()) + b"A" * (65 * KIB)

    for fields in ({"certificate": pem_file(big)}, {"pasted": big.decode()}):
        response = client.post(f"{shared.page}/upload", data=typed(**fields))
        assert response.status_code == 413
        page = response.get_data(as_text=True)
        assert "larger than 64 KiB" in page
        assert "<html" in page

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_an_incomplete_window_with_an_upload_is_422(client, session) -> None:
    shared = share(session)
    pem = certfactory.pem(partner_cert())

    for window in (
        {"window_date": f"{NEXT_YEAR}-01-15"},
        {"window_time": "10:00"},
        {"window_date": f"{NEXT_YEAR}-01-15", "window_time": "10:00", "window_timezone": "Mars/X"},
    ):
        response = client.post(
            f"{shared.page}/upload", data=typed(certificate=pem_file(pem), **window)
        )
        assert response.status_code == 422, window
        assert "Give a date, a time and a time zone" in response.get_data(as_text=True), window

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_a_past_window_with_an_upload_is_422(client, session) -> None:
    """Regression: POST /window refused a past date but an upload stored it."""
    shared = share(session)
    data = typed(
        certificate=pem_file(certfactory.pem(partner_cert())),
        window_date="2000-01-01",
        window_time="10:00",
        window_timezone="UTC",
    )

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 422
    assert "Propose a time in the future" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_upload_on_a_download_only_link_is_403_and_says_why(client, session) -> None:
    """Regression: the refusal used to sit on the upload form, which such a page never shows."""
    shared = share(session, can_upload=False, max_uploads=0)

    response = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(partner_cert()))),
    )

    assert response.status_code == 403
    assert "for downloading only" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert audit_events(session, "submission.received", shared.link) == []


def test_sending_the_same_file_twice_stores_and_counts_it_once(client, session) -> None:
    shared = share(session)
    pem = certfactory.pem(partner_cert())

    first = client.post(f"{shared.page}/upload", data=typed(certificate=pem_file(pem)))
    second = client.post(f"{shared.page}/upload", data=typed(certificate=pem_file(pem)))

    assert first.status_code == second.status_code == 302
    (submission,) = submissions_of(session, shared.partner)
    assert f"received={submission.id}" in first.location
    assert second.location == first.location
    assert uploads_used(session, shared.link) == 1
    assert len(audit_events(session, "submission.received", shared.link)) == 1


SCRIPT = "<script>alert(1)</script>"


def test_html_typed_by_the_partner_is_shown_as_text(client, session) -> None:
    shared = share(session)

    response = client.post(
        f"{shared.page}/upload",
        data=typed(pasted=SCRIPT, contact_name=SCRIPT, contact_email=SCRIPT),
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Invalid email address" in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_html_in_contact_is_escaped_on_the_confirmation_step(client, session) -> None:
    shared = share(session)
    name = '"><script>alert(1)</script>'

    response = client.post(
        f"{shared.page}/upload",
        data=typed(
            certificate=pem_file(certfactory.pem(partner_cert(key_size=2048))),
            contact_name=name,
        ),
    )

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert SCRIPT not in page
    assert browser_form(page, f"{shared.page}/upload")["contact_name"] == name


def test_upload_after_the_link_expired_while_the_page_was_open(
    client, session, monkeypatch
) -> None:
    shared = share(session, lifetime=timedelta(hours=1))
    data = upload_fields(shared, client, certificate=pem_file(certfactory.pem(partner_cert())))
    move_clock(monkeypatch, utcnow() + timedelta(hours=1, minutes=1))

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


# ---------------------------------------------------------------------------
# 5. Machine upload
# ---------------------------------------------------------------------------


def _raw_pem(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": certfactory.pem(cert), "content_type": "application/x-pem-file"}


def _raw_der(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": certfactory.der(cert), "content_type": "application/octet-stream"}


def _multipart(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": {"certificate": pem_file(certfactory.pem(cert), "partner.crt")}}


@pytest.mark.parametrize(
    ("body", "usage"),
    [(_raw_pem, None), (_raw_der, "signing"), (_multipart, "encryption")],
    ids=["pem-default-usage", "der-signing", "multipart-encryption"],
)
def test_machine_upload_answers_json_and_repeats_are_duplicates(
    client, session, body: Any, usage: str | None
) -> None:
    shared = share(session)
    cert = partner_cert()
    url = f"{shared.page}/certificate" + (f"?usage={usage}" if usage else "")

    first = client.post(url, **body(cert))

    assert first.status_code == 201, first.get_data(as_text=True)
    answer = first.get_json()
    assert answer["report"]["acceptable"] is True
    assert isinstance(answer["report"]["findings"], list)
    assert answer["report"]["certificate"]["fingerprint_sha256"] == colon_fingerprint(
        sha256_of(cert)
    )
    assert answer["status"] == "received"
    assert answer["duplicate"] is False
    (submission,) = submissions_of(session, shared.partner)
    assert answer["submission_id"] == submission.id
    assert submission.usage == (usage or "both")
    assert uploads_used(session, shared.link) == 1

    again = client.post(url, **body(cert))

    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["submission_id"] == submission.id
    assert len(submissions_of(session, shared.partner)) == 1
    assert uploads_used(session, shared.link) == 1


def test_machine_upload_takes_warnings_and_reports_them(client, session) -> None:
    shared = share(session)
    response = client.post(
        f"{shared.page}/certificate", data=certfactory.pem(partner_cert(key_size=2048))
    )
    assert response.status_code == 201
    codes = {f["code"] for f in response.get_json()["report"]["findings"]}
    assert "rsa_2048" in codes


@pytest.mark.parametrize(
    ("case", "data", "code"),
    [
        ("private key", _private_key, "private_key"),
        ("garbage", lambda: GARBAGE, "unreadable"),
    ],
)
def test_machine_upload_refusals_are_422_json_and_audited(
    client, session, case: str, data: Any, code: str
) -> None:
    shared = share(session)
    session.commit()

    response = client.post(f"{shared.page}/certificate", data=data())

    assert response.status_code == 422
    answer = response.get_json()
    assert answer["report"]["acceptable"] is False
    assert code in [f["code"] for f in answer["report"]["findings"]]
    assert answer["submission_id"] is None
    assert answer["status"] == "refused"
    assert uploads_used(session, shared.link) == 0
    session.rollback()
    (event,) = audit_events(session, "submission.refused", shared.link)
    assert code in event.details["codes"]
    assert submissions_of(session, shared.partner) == []


def test_machine_upload_too_large_is_413_json(client, session) -> None:
    shared = share(session)
    big = certfactory.pem(partner_cert()) + b"A" * (65 * KIB)

    for data in (big, {"certificate": pem_file(big)}):
        response = client.post(f"{shared.page}/certificate", data=data)
        assert response.status_code == 413
        assert "64 KiB" in response.get_json()["error"]

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("expired", 410),
        ("revoked", 410),
        ("forged", 404),
        ("download only", 403),
        ("used up", 409),
    ],
)
def test_machine_upload_on_a_link_that_cannot_take_it(
    app, client, session, monkeypatch, case: str, status: int
) -> None:
    options = {"can_upload": False, "max_uploads": 0} if case == "download only" else {}
    shared = (
        share(session, max_uploads=1, **options) if case == "used up" else share(session, **options)
    )
    token = shared.token
    if case == "expired":
        move_clock(monkeypatch, shared.link.expires_at + timedelta(minutes=1))
    elif case == "revoked":
        links.revoke(session, factories.ACTOR, shared.link, utcnow())
    elif case == "forged":
        token = _forged(token)
    elif case == "used up":
        first = client.post(f"/s/{token}/certificate", data=certfactory.pem(partner_cert()))
        assert first.status_code == 201
    before = len(submissions_of(session, shared.partner))

    response = client.post(
        f"/s/{token}/certificate",
        data=certfactory.pem(partner_cert()),
        headers={"Accept": "application/json"},
    )

    assert response.status_code == status
    assert response.is_json
    body = response.get_data(as_text=True)
    assert shared.partner.name not in body
    if case in ("expired", "revoked"):
        assert app.config["CONTACT_EMAIL"] in response.get_json()["error"]
    if case == "download only":
        assert "downloading only" in response.get_json()["error"]
    if case == "used up":
        assert "no uploads left" in response.get_json()["error"]
    assert len(submissions_of(session, shared.partner)) == before
    assert uploads_used(session, shared.link) == before


@pytest.fixture
def csrf_app(tmp_path: Path, database_url: str, connection) -> Flask:
    """The app with CSRF protection on, as in production."""
    app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


@pytest.fixture
def csrf_session(csrf_app: Flask) -> Iterator[Session]:
    with csrf_app.app_context():
        yield db.session


def test_machine_upload_needs_no_csrf_token_when_forms_do(csrf_app, csrf_session) -> None:
    shared = share(csrf_session)
    client = csrf_app.test_client()
    pem = certfactory.pem(partner_cert())

    form_post = client.post(f"{shared.page}/upload", data={"pasted": pem.decode()})
    assert form_post.status_code == 400  # forms do need the token
    machine = client.post(f"{shared.page}/certificate?usage=both", data=pem)

    assert machine.status_code == 201, machine.get_data(as_text=True)
    assert machine.get_json()["status"] == "received"
    assert len(submissions_of(csrf_session, shared.partner)) == 1


def test_page_prints_a_working_curl_line(app, client, session) -> None:
    shared = share(session)
    page = client.get(shared.page).get_data(as_text=True)

    block = re.search(r'<pre class="curl"><code>(.*?)</code></pre>', page, re.S)
    assert block is not None
    curl = html.unescape(block.group(1))
    assert curl.startswith("curl ")
    assert "--data-binary @" in curl
    assert "-X POST" in curl
    url = re.search(r'"(https?://[^"]+)"', curl)
    assert url is not None
    expected = f"{app.config['BASE_URL']}/s/{shared.token}/certificate"
    assert url.group(1).split("?")[0] == expected

    # What that line sends, sent to that path.
    path = url.group(1).removeprefix(app.config["BASE_URL"])
    response = client.post(
        path,
        data=certfactory.pem(partner_cert()),
        content_type="application/octet-stream",
    )
    assert response.status_code == 201
    assert response.get_json()["submission_id"] == submissions_of(session, shared.partner)[0].id


# ---------------------------------------------------------------------------
# 6. Upload limit
# ---------------------------------------------------------------------------


def test_a_one_upload_link_takes_one_certificate_then_says_none_left(client, session) -> None:
    shared = share(session, max_uploads=1)
    first, second, third = partner_cert(), partner_cert(), partner_cert()

    accepted = client.post(f"{shared.page}/certificate", data=certfactory.pem(first))
    refused = client.post(f"{shared.page}/certificate", data=certfactory.pem(second))

    assert accepted.status_code == 201
    assert refused.status_code == 409
    assert "no uploads left" in refused.get_json()["error"]
    assert uploads_used(session, shared.link) == 1
    assert [s.sha256 for s in submissions_of(session, shared.partner)] == [sha256_of(first)]

    by_page = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(third))),
    )
    assert by_page.status_code == 409
    assert "no uploads left" in by_page.get_data(as_text=True)
    repeat = client.post(f"{shared.page}/certificate", data=certfactory.pem(first))
    assert repeat.status_code == 200
    assert repeat.get_json()["duplicate"] is True

    page = client.get(shared.page).get_data(as_text=True)
    assert "This link has no uploads left" in page
    assert f'action="{shared.page}/upload"' not in page
    assert "curl" not in page
    assert uploads_used(session, shared.link) == 1
    assert len(submissions_of(session, shared.partner)) == 1


# ---------------------------------------------------------------------------
# 7. Change window and acknowledgement
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "local_time", "utc"),
    [
        (
            "America/Chicago",
            date(NEXT_YEAR, 1, 15),
            "09:30",
            datetime(NEXT_YEAR, 1, 15, 15, 30, tzinfo=UTC),
        ),
        (
            "America/Chicago",
            date(NEXT_YEAR, 7, 15),
            "09:30",
            datetime(NEXT_YEAR, 7, 15, 14, 30, tzinfo=UTC),
        ),
        (
            "Asia/Kolkata",
            date(NEXT_YEAR, 1, 15),
            "02:00",
            datetime(NEXT_YEAR, 1, 14, 20, 30, tzinfo=UTC),
        ),
    ],
)
def test_partner_proposes_a_change_window_stored_in_utc(
    client, session, zone: str, day: date, local_time: str, utc: datetime
) -> None:
    shared = share(session)
    data = browser_form(client.get(shared.page).get_data(as_text=True), f"{shared.page}/window")
    data.update(
        date=day.isoformat(),
        time=local_time,
        timezone=zone,
        contact_name="Grace",
        contact_email="grace@globex.example",
    )

    response = client.post(f"{shared.page}/window", data=data)

    assert response.status_code == 302
    assert response.location.endswith(f"{shared.page}#window")
    (window,) = windows_of(session, shared.partner)
    assert window.starts_at == utc
    assert window.timezone == zone
    assert (window.proposed_by, window.status) == ("partner", "proposed")
    assert (window.contact_name, window.contact_email) == ("Grace", "grace@globex.example")
    assert len(audit_events(session, "window.proposed", shared.link)) == 1
    page = client.get(shared.page).get_data(as_text=True)
    # Shown in a local zone (the proposal's or the partner's) with UTC beside it.
    shown = [format_in_zone(utc, z) for z in (zone, shared.partner.timezone)]
    assert any(text in page for text in shown), shown
    assert all(f"{utc:%H:%M} UTC" in text for text in shown)


def test_a_new_proposal_supersedes_the_previous_one(client, session) -> None:
    shared = share(session)
    for hour in ("10:00", "11:00"):
        response = client.post(
            f"{shared.page}/window",
            data={"date": f"{NEXT_YEAR}-02-01", "time": hour, "timezone": "UTC"},
        )
        assert response.status_code == 302
    assert [w.status for w in windows_of(session, shared.partner)] == ["superseded", "proposed"]
    page = client.get(shared.page).get_data(as_text=True)
    assert "11:00 UTC" in page
    assert "10:00 UTC" not in page


BAD_WINDOWS = [
    ({"date": "2000-01-01", "time": "10:00"}, "Propose a time in the future"),
    ({"date": "YESTERDAY", "time": "10:00"}, "Not a valid date"),
    ({"date": f"{NEXT_YEAR}-01-01", "time": ""}, "Not a valid time"),
    ({"date": f"{NEXT_YEAR}-01-01"}, "Give a date, a time and a time zone"),
    ({}, "Give a date and a time"),
    (
        {"date": f"{NEXT_YEAR}-01-01", "time": "10:00", "timezone": "Mars/Olympus"},
        "Not a valid choice",
    ),
    ({"date": f"{NEXT_YEAR}-01-01", "time": "10:00", "contact_email": SCRIPT}, "Invalid email"),
]


def test_a_bad_window_proposal_is_422_and_stores_nothing(client, session) -> None:
    shared = share(session)

    for fields, says in BAD_WINDOWS:
        response = client.post(f"{shared.page}/window", data={"timezone": "UTC", **fields})

        assert response.status_code == 422, fields
        page = response.get_data(as_text=True)
        assert says in page, fields
        assert SCRIPT not in page
    assert windows_of(session, shared.partner) == []
    assert audit_events(session, "window.proposed", partner=shared.partner) == []


def test_partner_confirms_they_installed_our_certificate(client, session) -> None:
    shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)
    page = client.get(shared.page).get_data(as_text=True)
    assert "You confirmed on" not in page
    data = browser_form(page, f"{shared.page}/acknowledge")
    data.update(installed_on=f"{NEXT_YEAR}-01-02", contact_name="Grace")

    response = client.post(f"{shared.page}/acknowledge", data=data)

    assert response.status_code == 302
    assert response.location.endswith(f"{shared.page}?acknowledged=1#installed")
    (ack,) = session.scalars(
        select(Acknowledgement).where(Acknowledgement.partner_id == shared.partner.id)
    ).all()
    assert ack.certificate_id == ours.id
    assert ack.installed_on == date(NEXT_YEAR, 1, 2)
    assert ack.contact_name == "Grace"
    assert ack.link_id == shared.link.id
    (event,) = audit_events(session, "link.acknowledged", shared.link)
    assert event.details["acknowledgement_id"] == ack.id
    page = client.get(response.location).get_data(as_text=True)
    assert "Thank you for confirming" in page
    assert "You confirmed on" in page
    assert f"(installed {NEXT_YEAR}-01-02)" in page


def test_a_bad_acknowledgement_is_422(client, session) -> None:
    shared = share(session)
    response = client.post(f"{shared.page}/acknowledge", data={"installed_on": "someday"})
    assert response.status_code == 422
    assert "Not a valid date" in response.get_data(as_text=True)
    assert (
        session.scalars(
            select(Acknowledgement).where(Acknowledgement.partner_id == shared.partner.id)
        ).all()
        == []
    )


# ---------------------------------------------------------------------------
# 8. Staff side
# ---------------------------------------------------------------------------


def link_form(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "link-purposes": ["download", "upload"],
        "link-expires": "14d",
        "link-max_uploads": "3",
    }
    data.update({f"link-{name}": value for name, value in fields.items()})
    return data


def links_of(session: Session, partner: Partner) -> list[ShareLink]:
    return list(session.scalars(select(ShareLink).where(ShareLink.partner_id == partner.id)))


@pytest.mark.parametrize(
    ("purposes", "can_download", "can_upload", "max_uploads"),
    [
        (["download", "upload"], True, True, 2),
        (["download"], True, False, 0),
        (["upload"], False, True, 2),
    ],
)
def test_operator_creates_a_link_and_sees_its_url(
    app, session, make_user, login, purposes, can_download, can_upload, max_uploads
) -> None:
    operator = make_user("operator")
    staff = login(operator)
    partner = factories.partner(session)
    before = utcnow()

    response = staff.post(
        f"/partners/{partner.id}/links",
        data=link_form(purposes=purposes, expires="14d", max_uploads="2"),
    )

    assert response.status_code == 302
    assert response.location.endswith(f"/partners/{partner.id}#links")
    (link,) = links_of(session, partner)
    assert (link.can_download, link.can_upload) == (can_download, can_upload)
    assert link.max_uploads == max_uploads
    assert before + timedelta(days=14) <= link.expires_at <= utcnow() + timedelta(days=14)
    assert link.created_by_id == operator.id
    (event,) = audit_events(session, "link.created", partner=partner)
    assert event.details["link_id"] == link.id
    assert event.actor == operator.email

    page = staff.get(response.location).get_data(as_text=True)
    assert f"Link {link.id} created" in page
    assert f"<code>{link.id}</code>" in page
    urls = re.findall(r'value="(https?://[^"]+/s/[^"]+)"', page)
    assert len(urls) == 1
    assert urls[0].startswith(app.config["BASE_URL"] + "/s/")
    partner_page = staff.get(urls[0].removeprefix(app.config["BASE_URL"]))
    assert partner_page.status_code == 200
    assert partner.name in partner_page.get_data(as_text=True)


BAD_LINK_FORMS = [
    ({"expires": "forever"}, "is not a duration"),
    ({"expires": "400d"}, "at most 365 days"),
    ({"expires": ""}, "This field is required"),
    ({"purposes": []}, "Choose at least one purpose"),
    ({"purposes": ["everything"]}, "is not a valid choice"),
    ({"purposes": ["upload"], "max_uploads": "0"}, "at least one upload"),
    ({"max_uploads": "21"}, "between 0 and 20"),
]


def test_bad_link_form_is_422_with_a_message(operator_client, session) -> None:
    partner = factories.partner(session)

    for fields, says in BAD_LINK_FORMS:
        response = operator_client.post(f"/partners/{partner.id}/links", data=link_form(**fields))

        assert response.status_code == 422, fields
        assert says in html.unescape(response.get_data(as_text=True)), fields
    assert links_of(session, partner) == []
    assert audit_events(session, "link.created", partner=partner) == []


def test_viewer_sees_links_but_not_their_urls(viewer_client, session) -> None:
    shared = share(session)

    page = viewer_client.get(f"/partners/{shared.partner.id}").get_data(as_text=True)

    assert f"<code>{shared.link.id}</code>" in page
    assert "/s/" not in page
    assert shared.token not in page
    assert "Create link" not in page
    assert "Revoke" not in page
    response = viewer_client.post(f"/partners/{shared.partner.id}/links", data=link_form())
    assert response.status_code == 403
    revoke = viewer_client.post(f"/partners/{shared.partner.id}/links/{shared.link.id}/revoke")
    assert revoke.status_code == 403
    assert links_of(session, shared.partner) == [shared.link]


def test_revoking_a_link_stops_it_once(operator_client, client, session) -> None:
    shared = share(session)
    path = f"/partners/{shared.partner.id}/links/{shared.link.id}/revoke"

    response = operator_client.post(path, follow_redirects=True)

    assert response.status_code == 200
    assert f"Link {shared.link.id} revoked" in response.get_data(as_text=True)
    assert len(audit_events(session, "link.revoked", shared.link)) == 1
    assert client.get(shared.page).status_code == 410

    again = operator_client.post(path, follow_redirects=True)

    assert again.status_code == 200
    page = again.get_data(as_text=True)
    assert "flash-error" in page
    assert "already revoked" in page
    assert len(audit_events(session, "link.revoked", shared.link)) == 1


def test_emailing_a_link_queues_a_placeholder_never_the_token(operator_client, session) -> None:
    partner = factories.partner(session, contact_emails=["a@globex.example", "b@globex.example"])
    shared = share(session, partner)

    response = operator_client.post(
        f"/partners/{partner.id}/links/{shared.link.id}/email", follow_redirects=True
    )

    assert response.status_code == 200
    assert "queued" in response.get_data(as_text=True)
    (message,) = outbox_for(session, shared.link)
    assert message.recipients == ["a@globex.example", "b@globex.example"]
    assert message.link_id == shared.link.id
    assert message.body.count(outbox.LINK_MARK) == 1  # where the URL goes when sent
    assert shared.token not in message.body
    assert shared.token not in message.subject
    assert "/s/" not in message.body
    assert len(audit_events(session, "link.emailed", shared.link)) == 1


def test_emailing_a_revoked_link_is_refused(operator_client, session) -> None:
    shared = share(session)
    links.revoke(session, factories.ACTOR, shared.link, utcnow())

    response = operator_client.post(
        f"/partners/{shared.partner.id}/links/{shared.link.id}/email", follow_redirects=True
    )

    assert "no longer works" in response.get_data(as_text=True)
    assert outbox_for(session, shared.link) == []


def test_link_actions_check_the_link_belongs_to_the_partner(operator_client, session) -> None:
    shared = share(session)
    other = factories.partner(session)

    for link_id in (shared.link.id, "x" * 22):
        for action in ("revoke", "email"):
            response = operator_client.post(f"/partners/{other.id}/links/{link_id}/{action}")
            assert response.status_code == 404, (link_id, action)

    session.refresh(shared.link)
    assert shared.link.revoked_at is None
    assert outbox_for(session, shared.link) == []


def test_submissions_list_shows_received_ones_and_empty_states(viewer_client, session) -> None:
    from portal.services import submissions

    shared = share(session)
    cert = partner_cert()
    outcome = submissions.submit_via_link(
        session,
        factories.ACTOR,
        shared.link,
        data=certfactory.pem(cert),
        usage="both",
        now=utcnow(),
        overlap=timedelta(days=7),
        confirm_warnings=True,
    )
    assert outcome.submission is not None

    page = viewer_client.get("/submissions").get_data(as_text=True)
    assert shared.partner.name in page
    assert colon_fingerprint(sha256_of(cert))[:23] in page
    for status in ("received", "all"):
        listed = viewer_client.get(f"/submissions?status={status}").get_data(as_text=True)
        assert shared.partner.name in listed
    rejected = viewer_client.get("/submissions?status=rejected").get_data(as_text=True)
    assert "No rejected submission." in rejected
    assert shared.partner.name not in rejected


# ---------------------------------------------------------------------------
# 9. Command line
# ---------------------------------------------------------------------------


def test_cli_link_create_prints_id_then_a_working_url(app, runner, client, session) -> None:
    partner = factories.partner(session)
    ours = factories.identity_certificate(session, keyring(), partner.identity)
    before = utcnow()

    result = runner.invoke(
        args=[
            "link",
            "create",
            "--partner",
            partner.as2_id,
            "--purpose",
            "download",
            "--expires",
            "2h",
        ]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    (link,) = links_of(session, partner)
    assert lines[0] == link.id
    url = lines[-1]
    assert url.startswith(app.config["BASE_URL"] + "/s/")
    assert (link.can_download, link.can_upload, link.max_uploads) == (True, False, 0)
    assert before + timedelta(hours=2) <= link.expires_at <= utcnow() + timedelta(hours=2)
    page = client.get(url.removeprefix(app.config["BASE_URL"]))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert colon_fingerprint(ours.sha256) in text
    assert 'id="upload"' not in text


CLI_MISUSE = [
    ["--expires", "3x"],
    ["--expires", "0m"],
    ["--expires", "366d"],
    ["--purpose", "foo"],
    ["--purpose", ","],
    ["--purpose", "download,foo"],
    ["--max-uploads", "21"],
]


def test_cli_link_create_misuse_exits_2(runner, session) -> None:
    partner = factories.partner(session)
    session.commit()

    for args in CLI_MISUSE:
        result = runner.invoke(args=["link", "create", "--partner", partner.as2_id, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "--expires" in result.output or "--purpose" in result.output or "21" in result.output

    assert links_of(session, partner) == []


def test_cli_link_create_for_an_unknown_partner_exits_1(runner, session) -> None:
    count = select(func.count()).select_from(ShareLink)
    before = session.scalar(count)

    result = runner.invoke(args=["link", "create", "--partner", "NOBODY-AT-ALL"])

    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "NOBODY-AT-ALL" in result.output
    assert session.scalar(count) == before


def test_cli_link_revoke_then_again_then_unknown(runner, client, session, monkeypatch) -> None:
    # An id that cannot be mistaken for an option (see the test below for one that can).
    monkeypatch.setattr(links, "new_link_id", lambda: "L" + secrets.token_urlsafe(16))
    shared = share(session)
    session.commit()  # the refusals below roll back the command's session, which is this one

    first = runner.invoke(args=["link", "revoke", shared.link.id])

    assert first.exit_code == 0, first.output
    assert f"Revoked link {shared.link.id}" in first.output
    assert client.get(shared.page).status_code == 410
    assert len(audit_events(session, "link.revoked", shared.link)) == 1

    second = runner.invoke(args=["link", "revoke", shared.link.id])
    assert second.exit_code == 1
    assert "already revoked" in second.output
    assert len(second.output.strip().splitlines()) == 1
    assert len(audit_events(session, "link.revoked", shared.link)) == 1

    unknown = runner.invoke(args=["link", "revoke", "no-such-link-id-here"])
    assert unknown.exit_code == 1
    assert len(unknown.output.strip().splitlines()) == 1


def test_a_link_id_never_starts_with_a_dash_so_the_cli_can_revoke_it(
    runner, client, session, monkeypatch
) -> None:
    """Regression: one id in 64 started with '-', which `link revoke ID` read as an option."""
    partner = factories.partner(session)
    real = secrets.token_urlsafe
    calls: list[int | None] = []

    def dash_first(nbytes: int | None = None) -> str:
        """The first random id drawn starts with '-', as one in 64 does."""
        calls.append(nbytes)
        return "-" + real(nbytes)[1:] if len(calls) == 1 else real(nbytes)

    with monkeypatch.context() as patch:
        patch.setattr(secrets, "token_urlsafe", dash_first)
        shared = share(session, partner)
    session.commit()

    result = runner.invoke(args=["link", "revoke", shared.link.id])

    assert result.exit_code == 0, result.output
    assert client.get(shared.page).status_code == 410
