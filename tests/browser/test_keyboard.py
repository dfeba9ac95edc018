"""Keyboard alone: every focus stop is visibly marked, and a partner does the whole visit
(download, upload with a warning to confirm, window, acknowledgement) with Tab, Enter and
Space, never the mouse.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db, keyring
from portal.models import Acknowledgement, ChangeWindow, ShareLink, Submission
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.browser.journey import DESKTOP
from tests.schedulehelpers import share

MAX_TABS = 200

# How the focused element is marked: an outline or a box shadow, either will do.
FOCUS_MARK = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  // The calendar button inside a date field: the browser's own part, with its own ring.
  if (!el.matches(":focus")) return null;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {shown: outlined || style.boxShadow !== "none",
          what: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                + " " + (el.textContent || el.name || "").trim().slice(0, 40)};
}"""


def tab_to(page: Any, target: Any) -> None:
    """Press Tab until TARGET has the focus (fails when it never gets it)."""
    for _ in range(MAX_TABS):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the keyboard focus")


def type_date(page: Any, target: Any, day: date) -> None:
    """Type DAY into a date field, digits only, in the order the browser shows its parts."""
    tab_to(page, target)
    # The order of day and month follows the browser's own locale: a probe tells which.
    page.keyboard.type("01022003")
    month_first = target.input_value() == "2003-01-02"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.type(day.strftime("%m%d%Y" if month_first else "%d%m%Y"))
    assert target.input_value() == day.isoformat()


def type_time(page: Any, target: Any, hh_mm: str) -> None:
    """Type HH:MM (before noon) into a time field, in 24-hour or 12-hour form."""
    tab_to(page, target)
    page.keyboard.type(hh_mm.replace(":", ""))
    if target.input_value() != hh_mm:
        page.keyboard.type("A")  # the AM/PM part of a 12-hour clock
    assert target.input_value() == hh_mm


def _partner_link(app: Flask) -> tuple[str, str]:
    with app.app_context():
        identity = factories.identity(db.session)
        factories.identity_certificate(db.session, keyring(), identity)
        link, token = share(db.session, factories.partner(db.session, identity))
        db.session.commit()
        return link.id, token


def test_every_focus_stop_is_visible(live_app: Flask, server: str, browser: Any) -> None:
    _link_id, token = _partner_link(live_app)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    unmarked = []
    for path in (f"/s/{token}", "/login"):
        page.goto(server + path)
        seen = 0
        for _ in range(40):
            page.keyboard.press("Tab")
            mark = page.evaluate(FOCUS_MARK)
            if mark is None:
                continue
            seen += 1
            if not mark["shown"]:
                unmarked.append(f"{path}: {mark['what']}")
        assert seen > 3, f"{path}: Tab reached {seen} elements"
    context.close()
    assert unmarked == [], "focus not visible on:\n" + "\n".join(sorted(set(unmarked)))


def test_partner_visit_by_keyboard_alone(
    live_app: Flask, server: str, browser: Any, tmp_path: Path
) -> None:
    link_id, token = _partner_link(live_app)
    cert, _key = certfactory.make_cert(now=utcnow(), days=400)  # RSA 2048: a warning to confirm
    upload_file = tmp_path / "partner.pem"
    upload_file.write_bytes(certfactory.pem(cert))
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", accept_downloads=True)
    page = context.new_page()
    # Intercept file choosers from the start: enabled only when Space is pressed, the
    # interception can come too late and the chooser open unseen.
    page.on("filechooser", lambda _chooser: None)
    keys = page.keyboard
    page.goto(f"{server}/s/{token}")

    tab_to(page, page.locator("#ours a[href$='.pem']").first)
    with page.expect_download():
        keys.press("Enter")

    tab_to(page, page.locator("#upload input[name=certificate]"))
    with page.expect_file_chooser() as chooser:
        keys.press("Space")
    chooser.value.set_files(str(upload_file))
    tab_to(page, page.get_by_role("button", name="Check the certificate"))
    with page.expect_navigation():
        keys.press("Enter")

    confirm = page.locator("#upload input[name=confirm_warnings]")
    tab_to(page, confirm)
    keys.press("Space")
    expect(confirm).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Send this certificate"))
    with page.expect_navigation():
        keys.press("Enter")

    day = (utcnow() + timedelta(days=20)).date()
    type_date(page, page.locator("#window input[name=date]"), day)
    type_time(page, page.locator("#window input[name=time]"), "09:30")
    tab_to(page, page.get_by_role("button", name="Propose this time"))
    with page.expect_navigation():
        keys.press("Enter")

    tab_to(page, page.get_by_role("button", name="I have installed your certificate"))
    with page.expect_navigation():
        keys.press("Enter")
    context.close()

    with live_app.app_context():
        session = db.session
        assert session.get(ShareLink, link_id).download_count == 1
        assert session.scalars(select(Submission)).one().status == "received"
        window = session.scalars(select(ChangeWindow)).one()
        local = window.starts_at.astimezone(ZoneInfo(window.timezone))
        assert local.strftime("%Y-%m-%d %H:%M") == f"{day.isoformat()} 09:30"
        assert session.scalars(select(Acknowledgement)).one().link_id == link_id
