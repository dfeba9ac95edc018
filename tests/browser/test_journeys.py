"""Three people's whole journeys in headless Chromium, on a phone (375 px) and a desktop.

(1) A partner downloads our certificate, uploads one that raises a warning and confirms it,
proposes a change window and acknowledges, in English and in German. (2) An approver finds
that kind of submission, compares it with the certificate in force, approves it for the
proposed window and sees it on the dashboard. (3) An operator generates a certificate,
schedules it, starts a campaign and watches the board move as a partner acts.

Every journey fails on a console error, a page error or a request to another origin, and
saves a screenshot per step (tests/browser/journey.py says where).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from portal.domain.certs import colon_fingerprint
from portal.extensions import db, keyring, link_signer
from portal.models import (
    Acknowledgement,
    Campaign,
    CampaignPartner,
    Certificate,
    ChangeWindow,
    ShareLink,
    Submission,
)
from portal.services import approvals
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.browser.journey import Journey, sign_in, words
from tests.conftest import TEST_PASSWORD
from tests.schedulehelpers import partner_cert, receive, share

WIDTHS = ["phone", "desktop"]


def _staff(app: Flask, role: str) -> str:
    """A staff account of ROLE; its email."""
    with app.app_context():
        user = factories.user(db.session, role=role, password=TEST_PASSWORD)
        db.session.commit()
        return user.email


# (1) The partner ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["en", "de"])
def test_partner_journey(
    live_app: Flask, server: str, browser: Any, tmp_path: Path, language: str, width: str
) -> None:
    _ = words(language)
    with live_app.app_context():
        identity = factories.identity(db.session, organisation="Acme Corp")
        ours = factories.identity_certificate(db.session, keyring(), identity)
        link, token = share(db.session, factories.partner(db.session, identity))
        db.session.commit()
        link_id, our_sha256 = link.id, ours.sha256
    cert, _key = certfactory.make_cert(now=utcnow(), days=400)  # RSA 2048: a warning to confirm
    upload_file = tmp_path / "partner.pem"
    upload_file.write_bytes(certfactory.pem(cert))
    journey = Journey(browser, server, "partner", language=language, width=width)
    page = journey.page()

    page.goto(f"{server}/s/{token}")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("button", name=_("Check the certificate"))).to_be_visible()
    if language == "de":  # German text is shown, not the English it translates
        assert _("Check the certificate") != "Check the certificate"
        expect(page.get_by_role("button", name="Check the certificate")).to_have_count(0)
    journey.shot(page, "opened")

    with page.expect_download() as download:
        page.locator("#ours a[href$='.pem']").first.click()
    assert our_sha256[:16] in download.value.suggested_filename
    journey.shot(page, "downloaded ours")

    page.locator("#upload input[name=certificate]").set_input_files(str(upload_file))
    page.get_by_role("button", name=_("Check the certificate")).click()
    confirm = page.locator("#upload input[name=confirm_warnings]")
    expect(confirm).to_be_visible()  # a warning to confirm, not a refusal
    journey.shot(page, "warning to confirm")

    confirm.check()
    page.get_by_role("button", name=_("Send this certificate")).click()
    expect(confirm).to_have_count(0)  # sent: nothing left to confirm (the data is checked below)
    journey.shot(page, "certificate sent")

    day = (utcnow() + timedelta(days=20)).date().isoformat()
    page.locator("#window input[name=date]").fill(day)
    page.locator("#window input[name=time]").fill("09:30")
    page.get_by_role("button", name=_("Propose this time")).click()
    expect(page.get_by_role("button", name=_("I have installed your certificate"))).to_be_visible()
    journey.shot(page, "window proposed")

    with page.expect_navigation():
        page.get_by_role("button", name=_("I have installed your certificate")).click()
    journey.shot(page, "installed")
    journey.finish()

    with live_app.app_context():
        session = db.session
        assert session.get(ShareLink, link_id).download_count >= 1
        submission = session.scalars(select(Submission)).one()
        assert (submission.status, submission.sha256) == (
            "received",
            cert.fingerprint(hashes.SHA256()).hex(),
        )
        window = session.scalars(select(ChangeWindow)).one()
        local = window.starts_at.astimezone(ZoneInfo(window.timezone))
        assert local.strftime("%Y-%m-%d %H:%M") == f"{day} 09:30"  # in the partner's zone
        assert session.scalars(select(Acknowledgement)).one().link_id == link_id


# (2) The approver ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_approver_journey(live_app: Flask, server: str, browser: Any, width: str) -> None:
    email = _staff(live_app, "approver")
    switch = (utcnow() + timedelta(days=12)).replace(hour=8, minute=0, second=0, microsecond=0)
    with live_app.app_context():
        session = db.session
        partner = factories.partner(session, name="Globex Trading")
        link, _token = share(session, partner)
        first = receive(session, link)
        colleague = factories.user(session, role="approver", password=TEST_PASSWORD)
        now = utcnow()
        approvals.approve_submission(
            session, Actor.for_user(colleague), first, activate_at=now, now=now
        )
        offered = receive(
            session, link, partner_cert(days=430),
            proposed_window_start=switch, proposed_timezone="Europe/Berlin",
        )  # fmt: skip
        session.commit()
        offered_id = offered.id
    journey = Journey(browser, server, "approver", width=width)
    page = journey.page()

    sign_in(page, server, email, TEST_PASSWORD)
    journey.shot(page, "signed in")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Received").click()
    row = page.get_by_role("row").filter(has_text="Globex Trading")
    expect(row).to_have_count(1)
    journey.shot(page, "queue")

    row.get_by_role("link", name=f"#{offered_id}").click()
    expect(
        page.get_by_role("heading", name="Compared with the certificate in force")
    ).to_be_visible()
    comparison = page.locator("table").filter(has_text="In force")
    expect(comparison).to_contain_text("the same key is reused")
    expect(comparison).to_contain_text("later by 30 days")
    journey.shot(page, "review and comparison")

    page.get_by_label("Activate").select_option("proposal")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Approved.")
    journey.shot(page, "approved")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    upcoming = page.locator("section").filter(
        has=page.get_by_role("heading", name="Upcoming activations")
    )
    expect(upcoming).to_contain_text("Globex Trading")
    journey.shot(page, "dashboard")
    journey.finish()

    with live_app.app_context():
        approved = db.session.get(Submission, offered_id)
        assert approved.status == "approved"
        certificate = db.session.scalars(
            select(Certificate).where(Certificate.sha256 == approved.sha256)
        ).one()
        assert certificate.activate_at == switch


# (3) The operator ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_operator_journey(live_app: Flask, server: str, browser: Any, width: str) -> None:
    email = _staff(live_app, "operator")
    with live_app.app_context():
        identity = factories.identity(db.session, name="Acme Rotation", organisation="Acme Corp")
        factories.partner(db.session, identity, name="Berlin Trading")
        factories.partner(db.session, identity, name="Tokyo Goods", timezone="Asia/Tokyo")
        db.session.commit()
        identity_id = identity.id
    switch = (utcnow() + timedelta(days=10)).date().isoformat()
    journey = Journey(browser, server, "operator", width=width)
    page = journey.page()

    sign_in(page, server, email, TEST_PASSWORD)
    main = page.get_by_role("navigation", name="Main")
    main.get_by_role("link", name="Identities").click()
    page.get_by_role("link", name="Acme Rotation").click()
    journey.shot(page, "identity")

    generate = page.locator("form[action$='/certificates/generate']")
    generate.get_by_role("button", name="Generate").click()
    expect(page.locator(".flash-success")).to_contain_text("New certificate generated")
    journey.shot(page, "generated")

    schedule = page.locator("form[action$='/schedule']")
    schedule.get_by_label("Date", exact=True).fill(switch)
    schedule.get_by_label("Time", exact=True).fill("10:00")
    schedule.get_by_label("Time zone", exact=True).select_option("UTC")
    schedule.get_by_role("button", name="Propose").click()
    schedule_facts = page.locator("dl").filter(has_text="Takes effect")
    expect(schedule_facts).to_contain_text("waiting for a second person")
    journey.shot(page, "scheduled")
    with live_app.app_context():
        ours = db.session.scalars(
            select(Certificate).where(Certificate.identity_id == identity_id)
        ).one()
        sha256 = ours.sha256

    main.get_by_role("link", name="Campaigns").click()
    start = page.locator("form[action$='/campaigns']")
    start.get_by_label("Identity", exact=True).select_option(str(identity_id))
    start.get_by_label("New certificate (SHA-256)").fill(colon_fingerprint(sha256))
    start.get_by_label("Switch on").fill(switch)
    start.get_by_label("At", exact=True).fill("10:00")
    start.get_by_label("Time zone", exact=True).select_option("UTC")
    journey.shot(page, "campaign form")
    start.get_by_role("button", name="Start the campaign").click()
    counts = page.get_by_role("navigation", name="Partners by state")
    expect(counts).to_contain_text("Sent: 2")
    journey.shot(page, "board")

    with live_app.app_context():
        campaign = db.session.scalars(select(Campaign)).one()
        row = db.session.scalars(
            select(CampaignPartner).where(CampaignPartner.campaign_id == campaign.id)
        ).all()
        link_id = next(r.link_id for r in row if r.partner.name == "Berlin Trading")
        token = link_signer().sign(link_id)
    partner = journey.page(journey.other_context())  # the partner's own browser

    partner.goto(f"{server}/s/{token}")
    page.reload()
    expect(counts).to_contain_text("Opened: 1")
    journey.shot(page, "board after the partner opened")

    with partner.expect_download():
        partner.locator("#ours a[href$='.pem']").first.click()
    page.reload()
    expect(counts).to_contain_text("Downloaded: 1")
    journey.shot(page, "board after the download")

    with partner.expect_navigation():
        partner.get_by_role("button", name="I have installed your certificate").click()
    journey.shot(partner, "partner acknowledged")
    page.reload()
    expect(counts).to_contain_text("Acknowledged: 1")
    expect(page.get_by_role("row").filter(has_text="Berlin Trading")).to_contain_text(
        "acknowledged"
    )
    journey.shot(page, "board after the acknowledgement")
    journey.finish()
