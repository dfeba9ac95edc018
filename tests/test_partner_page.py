"""The partner's link page: who asks for what, downloads of our certificates, and the
answers to tokens that do not work (unknown, forged, expired, revoked).

Time is moved with the `clock` fixture (tests/conftest.py), never by sleeping.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from portal.domain.certs import colon_fingerprint
from portal.domain.tokens import LinkSigner
from portal.extensions import keyring
from portal.services import links
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure
from tests.linkhelpers import (
    BROWSER,
    NEXT_YEAR,
    audit_events,
    forged,
    partner_cert,
    sha256_of,
    share,
    submissions_of,
    windows_of,
)

# ---------------------------------------------------------------------------
# The page
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


def test_get_counts_a_visit_once_per_interval_consumes_nothing_and_audits_the_first(
    client, session, clock
) -> None:
    shared = share(session, max_uploads=2)
    clock.set(utcnow())

    for _ in range(2):  # a reload within the interval writes nothing
        response = client.get(shared.page, headers={"User-Agent": BROWSER})
        assert response.status_code == 200

    session.refresh(shared.link)
    assert shared.link.opened_count == 1
    first_seen = shared.link.last_opened_at
    assert first_seen is not None
    assert shared.link.uploads_used == 0
    assert shared.link.download_count == 0
    opened = audit_events(session, "link.opened", shared.link)
    assert len(opened) == 1
    assert {(e.client_address, e.user_agent) for e in opened} == {("127.0.0.1", BROWSER)}
    assert opened[0].object_id == str(shared.partner.id)
    assert shared.link.id in opened[0].actor
    assert "2 uploads left" in response.get_data(as_text=True)

    clock.advance(links.OPEN_RECOUNT)  # a later visit counts again, without an audit row
    assert client.get(shared.page).status_code == 200
    session.refresh(shared.link)
    assert shared.link.opened_count == 2
    assert shared.link.last_opened_at > first_seen
    assert len(audit_events(session, "link.opened", shared.link)) == 1


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
# Downloads
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
    assert "--data-binary" not in page  # no upload line; the certificates feed line stays
    assert f"{shared.page}/certificates.json" in page


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
# Tokens that do not work
# ---------------------------------------------------------------------------


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
        "forged signature": forged(shared.token),
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
    app, client, session, clock, how: str
) -> None:
    reconfigure(app, CONTACT_EMAIL="certificates@acme.example")
    now = utcnow()
    if how == "created already expired":
        shared = share(session, now=now - timedelta(days=15))
    else:
        shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)
    if how != "created already expired":
        assert client.get(shared.page).status_code == 200  # it worked until now
    if how == "clock moved past expiry":
        clock.set(shared.link.expires_at + timedelta(seconds=1))
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


def test_a_hostile_user_agent_is_audited_as_one_clean_line(client, session) -> None:
    shared = share(session)
    hostile = "Mozilla/5.0\u202e (evil)\x1b[2J" + "x" * 600

    assert client.get(shared.page, headers={"User-Agent": hostile}).status_code == 200

    (opened,) = audit_events(session, "link.opened", shared.link)
    assert opened.user_agent is not None
    assert opened.user_agent.startswith("Mozilla/5.0 (evil)[2J")
    assert len(opened.user_agent) <= 400
    assert opened.user_agent.isprintable()
