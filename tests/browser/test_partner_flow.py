"""A partner's whole visit in a real browser (headless Chromium driven by Playwright).

Skipped when no Chromium is installed, unless PORTAL_REQUIRE_BROWSER=1 (as in .ci/run,
which installs it): then a missing browser fails the run instead of hiding the tier.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from portal.extensions import db, keyring
from portal.models import Acknowledgement, ChangeWindow, Submission
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.test_links_live import _link


def test_partner_downloads_uploads_confirms_and_proposes(
    live_app: Flask,
    server: str,
    browser,
    tmp_path: Path,
) -> None:
    link_id, token = _link(live_app, max_uploads=2)
    with live_app.app_context():
        link = db.session.get(factories.ShareLink, link_id)
        ours = factories.identity_certificate(db.session, keyring(), link.partner.identity)
        db.session.commit()
        our_sha256 = ours.sha256
    cert, _ = certfactory.make_cert(now=utcnow(), days=400)  # RSA 2048: a warning to confirm
    upload_file = tmp_path / "partner.pem"
    upload_file.write_bytes(certfactory.pem(cert))

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    page.goto(f"{server}/s/{token}")
    assert "asks" in page.locator("h1").inner_text()
    with page.expect_download() as download:
        page.locator("#ours a", has_text=".pem").first.click()
    assert download.value.suggested_filename.endswith(".pem")
    assert our_sha256[:16] in download.value.suggested_filename

    page.set_input_files("#certificate", str(upload_file))
    with page.expect_navigation():
        page.locator("#upload button[type=submit]").click()
    assert "3072 bits are recommended" in page.locator("#upload").inner_text()
    page.check("#confirm_warnings")
    with page.expect_navigation():
        page.locator("#upload button[type=submit]").click()
    received = page.locator("#upload .flash-success").inner_text()
    assert "we received your certificate" in received

    day = (utcnow() + timedelta(days=20)).date().isoformat()
    page.fill("#window #date", day)
    page.fill("#window #time", "09:30")
    with page.expect_navigation():
        page.locator("#window button[type=submit]").click()
    with page.expect_navigation():
        page.locator("#installed button[type=submit]").click()
    assert "Thank you for confirming" in page.content()

    assert all(url.startswith(server) for url in requested), requested  # nothing from elsewhere
    assert errors == []
    with live_app.app_context():
        session = db.session
        submission = session.scalars(select(Submission)).one()
        assert submission.status == "received"
        assert submission.sha256 in received.replace(":", "").lower()
        window = session.scalars(select(ChangeWindow)).one()
        # Entered as 09:30 in the partner's zone (the form's default), stored in UTC.
        local = window.starts_at.astimezone(ZoneInfo(window.timezone))
        assert window.timezone == "Europe/Berlin"
        assert local.strftime("%Y-%m-%d %H:%M") == f"{day} 09:30"
        assert session.scalars(select(Acknowledgement)).one().link_id == link_id
    context.close()
