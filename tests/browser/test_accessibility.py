"""axe-core finds no serious or critical WCAG 2.1 A/AA violation on the pages people land on.

axe-core comes from npm (package.json pins it; `npm ci` installs it, as .ci/run does). It is
injected with Playwright's evaluate, which runs outside the page's Content-Security-Policy,
so the pages keep their real CSP (no inline script) while being checked. Without axe-core
the tests skip, unless PORTAL_REQUIRE_BROWSER=1 (.ci/run): then they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db, keyring
from portal.services import approvals
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.browser.journey import DESKTOP, ROOT, open_tucked, sign_in
from tests.conftest import TEST_PASSWORD
from tests.linkhelpers import GARBAGE
from tests.schedulehelpers import partner_cert, receive, share

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                          resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((node) => node.target.join(" ")),
  }));
}"""

REPEATED_IDS = """() => {
  const seen = {};
  document.querySelectorAll("[id]").forEach((el) => { seen[el.id] = (seen[el.id] || 0) + 1; });
  return Object.keys(seen).filter((id) => seen[id] > 1).sort();
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    """The axe-core script, or a skip (a failure when the browser tier is required)."""
    if not AXE.is_file():
        reason = f"axe-core is not installed ({AXE} missing): run `npm ci` in the checkout"
        if os.environ.get("PORTAL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return AXE.read_text(encoding="utf-8")


def serious_violations(page: Any, axe_source: str) -> list[str]:
    """The serious and critical violations axe finds on PAGE, one line each."""
    page.evaluate(axe_source)
    found = page.evaluate(RUN_AXE, TAGS)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["targets"])
        for v in found
        if v["impact"] in BLOCKING
    ]


@pytest.fixture
def seeded(live_app: Flask) -> dict[str, Any]:
    """An admin, our identity with its certificate, a partner with a certificate in force,
    a submission to review and a share link (with its token)."""
    with live_app.app_context():
        session = db.session
        admin = factories.user(session, role="admin", password=TEST_PASSWORD)
        identity = factories.identity(session, organisation="Acme Corp")
        factories.identity_certificate(session, keyring(), identity)
        partner = factories.partner(session, identity, name="Globex Trading")
        link, token = share(session, partner)
        now = utcnow()
        first = receive(session, link)
        approvals.approve_submission(
            session, Actor.for_user(admin), first, activate_at=now, now=now
        )
        offered = receive(session, link, partner_cert(days=430))
        session.commit()
        return {
            "email": admin.email,
            "token": token,
            "identity": identity.id,
            "partner": partner.id,
            "submission": offered.id,
        }


def _refused_upload(page: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "not-a-certificate.pem"
    garbage.write_bytes(GARBAGE)
    open_tucked(page, "#upload")  # a certificate is already waiting for review
    page.locator("#upload input[name=certificate]").set_input_files(str(garbage))
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Check the certificate").click()
    response = refused.value
    assert response is not None
    assert response.status == 422


def _everything_done(app: Flask, token: str) -> None:
    """Upload, window and acknowledgement, sent as the partner's browser would."""
    client = app.test_client()
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key_size=3072)
    sent = client.post(
        f"/s/{token}/upload", data={"pasted": certfactory.pem(cert).decode(), "usage": "both"}
    )
    assert sent.status_code == 302, sent.status_code  # stored: no warning to confirm
    day = (utcnow() + timedelta(days=20)).date().isoformat()
    sent = client.post(f"/s/{token}/window", data={"date": day, "time": "09:30"})
    assert sent.status_code == 302, sent.status_code
    assert client.post(f"/s/{token}/acknowledge", data={}).status_code == 302


# name: (path from the seeded data, signed in?, what to do on the page before axe runs)
PAGES: dict[str, tuple[Callable[[dict[str, Any]], str], bool, str | None]] = {
    "partner page": (lambda s: f"/s/{s['token']}", False, None),
    "partner page, refused upload": (lambda s: f"/s/{s['token']}", False, "refused"),
    "partner page, all done": (lambda s: f"/s/{s['token']}", False, "done"),
    "sign-in": (lambda s: "/login", False, None),
    "dashboard": (lambda s: "/", True, None),
    "queue": (lambda s: "/submissions", True, None),
    "submission review": (lambda s: f"/submissions/{s['submission']}", True, None),
    "identity": (lambda s: f"/identities/{s['identity']}", True, None),
    "partner (staff)": (lambda s: f"/partners/{s['partner']}", True, None),
}


@pytest.mark.parametrize("name", PAGES)
def test_no_serious_accessibility_violation(
    name: str,
    live_app: Flask,
    server: str,
    browser: Any,
    seeded: dict[str, Any],
    axe_source: str,
    tmp_path: Path,
) -> None:
    path_of, signed_in, before = PAGES[name]
    if before == "done":
        _everything_done(live_app, seeded["token"])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    if signed_in:
        sign_in(page, server, seeded["email"], TEST_PASSWORD)
    answer = page.goto(server + path_of(seeded))
    assert answer is not None, name
    assert answer.status == 200, name
    if before == "refused":
        _refused_upload(page, tmp_path)
    found = serious_violations(page, axe_source)
    # axe only flags a repeated id as "needs review"; a label or an error link then points at
    # another form's field, so it is checked here outright.
    repeated = page.evaluate(REPEATED_IDS)
    context.close()
    assert found == [], f"{name} ({path_of(seeded)}):\n" + "\n".join(found)
    assert repeated == [], f"{name}: ids used more than once: {repeated}"
