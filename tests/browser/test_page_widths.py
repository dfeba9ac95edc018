"""No page is wider than the window, on a phone (375 px) or a desktop (1280 px).

Pages are filled with what makes them wide in real use: full fingerprints, long AS2 IDs and
partner names, link ids, long audit summaries. A wide table may scroll inside its own box;
the page itself must not scroll sideways.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from portal.extensions import db, keyring, link_signer
from portal.services import campaigns, links
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.browser.journey import open_tucked
from tests.conftest import TEST_PASSWORD
from tests.linkhelpers import GARBAGE
from tests.schedulehelpers import receive

WIDTHS = (375, 1280)
LONG = "Internationale Speditions- und Logistikgesellschaft Rhein-Main-Donau mbH & Co. KG"


@pytest.fixture
def pages(live_app: Flask) -> dict[str, str]:
    """Every kind of page a person reads, with wide content, by name: its path."""
    with live_app.app_context():
        session = db.session
        factories.user(session, role="admin", password=TEST_PASSWORD, email="admin@acme.example")
        identity = factories.identity(session, as2_id="ACME-PRODUCTION-AS2-IDENTIFIER-0001")
        ours = factories.identity_certificate(session, keyring(), identity)
        partner = factories.partner(
            session, identity, name=LONG, as2_id="PARTNER-WITH-A-VERY-LONG-AS2-IDENTIFIER-42"
        )
        link, token = links.create_link(
            session, factories.ACTOR, link_signer(), partner, can_download=True,
            can_upload=True, lifetime=timedelta(days=5), max_uploads=3, now=utcnow(),
        )  # fmt: skip
        submission = receive(session, link, certfactory.make_cert(now=utcnow(), days=400)[0])
        campaign = campaigns.start(
            session, factories.ACTOR,
            campaigns.StartRequest(identity, ours.sha256, utcnow() + timedelta(days=10)),
            now=utcnow(),
        )  # fmt: skip
        session.commit()
        return {
            "dashboard": "/",
            "partners": "/partners",
            "partner": f"/partners/{partner.id}",
            "identity": f"/identities/{identity.id}",
            "certificate": f"/certificates/{ours.id}",
            "queue": "/submissions",
            "submission": f"/submissions/{submission.id}",
            "campaigns": "/campaigns",
            "campaign board": f"/campaigns/{campaign.id}",
            "audit": "/audit",
            "expiring": "/expiring",
            "outbox": "/outbox",
            "identities": "/identities",
            "new identity": "/identities/new",
            "identity form": f"/identities/{identity.id}/edit",
            "certificate import": f"/identities/{identity.id}/certificates/import",
            "new partner": "/partners/new",
            "partner form": f"/partners/{partner.id}/edit",
            "users": "/users",
            "new user": "/users/new",
            "API tokens": "/tokens",
            "webhooks": "/webhooks",
            "password": "/account/password",
            "two-factor": "/account/two-factor",
            # Last: the refused upload below is sent from this page.
            "partner page": f"/s/{token}",
        }


def test_no_page_is_wider_than_the_window(
    server: str, browser, pages: dict[str, str], tmp_path: Path
) -> None:
    garbage = tmp_path / "not-a-certificate.pem"
    garbage.write_bytes(GARBAGE)
    too_wide = []

    def measure(page, name: str, width: int) -> None:
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            too_wide.append(f"{name} at {width} px: {wide} px wide")

    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        page.goto(f"{server}/login")
        measure(page, "sign-in", width)
        page.fill("input[name=email]", "admin@acme.example")
        page.fill("input[name=password]", TEST_PASSWORD)
        with page.expect_navigation():
            page.locator("form button[type=submit]").first.click()
        for name, path in pages.items():
            answer = page.goto(f"{server}{path}")
            assert answer is not None, name
            assert answer.status == 200, (name, answer.status)
            measure(page, name, width)
        # The partner page with a refused upload's report (the journeys cover the others).
        open_tucked(page, "#upload")  # a certificate is already waiting for review
        page.locator("#upload input[name=certificate]").set_input_files(str(garbage))
        with page.expect_navigation():
            page.get_by_role("button", name="Check the certificate").click()
        measure(page, "partner page after a refused upload", width)
        context.close()
    assert too_wide == [], "\n".join(too_wide)
