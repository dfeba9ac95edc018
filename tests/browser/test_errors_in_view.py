"""A refused staff form puts the first field at fault in view and in focus, on a phone too."""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect

from portal.extensions import db
from tests import factories
from tests.browser.journey import PHONE, sign_in
from tests.conftest import TEST_PASSWORD
from tests.linkhelpers import GARBAGE
from tests.schedulehelpers import share


def test_a_refused_staff_form_focuses_its_first_invalid_field(
    live_app: Flask, server: str, browser: Any
) -> None:
    with live_app.app_context():
        admin = factories.user(db.session, role="admin", password=TEST_PASSWORD)
        factories.identity(db.session)
        db.session.commit()
        email = admin.email
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, server, email, TEST_PASSWORD)
    page.goto(f"{server}/partners/new")
    page.locator("input[name=contact_emails], textarea[name=contact_emails]").first.fill(
        "not an address"
    )
    with page.expect_navigation():
        page.locator("main form button[type=submit]").last.click()

    focused = page.evaluate(
        "() => ({invalid: document.activeElement.getAttribute('aria-invalid'),"
        " name: document.activeElement.name,"
        " top: document.activeElement.getBoundingClientRect().top})"
    )
    assert focused["invalid"] == "true", focused
    assert 0 <= focused["top"] < PHONE["height"], focused
    context.close()


def test_a_refused_upload_on_a_phone_lands_on_its_report(
    live_app: Flask, server: str, browser: Any, tmp_path
) -> None:
    with live_app.app_context():
        partner = factories.partner(db.session)
        _link, token = share(db.session, partner)
        db.session.commit()
    garbage = tmp_path / "not-a-certificate.pem"
    garbage.write_bytes(GARBAGE)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{server}/s/{token}")
    page.locator("#upload input[name=certificate]").set_input_files(str(garbage))
    with page.expect_navigation():
        page.get_by_role("button", name="Check the certificate").click()

    report = page.locator("#upload-report")
    expect(report).to_be_focused()
    top = report.evaluate("element => element.getBoundingClientRect().top")
    assert 0 <= top < PHONE["height"], top
    assert "We cannot accept this file" in report.inner_text()
    context.close()
