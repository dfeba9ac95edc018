"""Defects found in the first real rotation (issue 8, items 6 and 9), one test or more each.

Each test is named after what it protects and failed on the code before its fix.
"""

from __future__ import annotations

import html
import io
import os
import re
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import create_app
from portal.domain.certs import colon_fingerprint
from portal.extensions import db, keyring, link_signer
from portal.models import (
    AuditEvent,
    Certificate,
    ChangeWindow,
    Partner,
    ShareLink,
    Submission,
    User,
)
from portal.services import approvals, links, schedule, submissions, windows
from portal.services.actor import Actor
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure, test_settings

OVERLAP = timedelta(days=7)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def text_of(response: Any) -> str:
    """The page as a person reads it: tags gone, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def minute(moment: datetime) -> datetime:
    """MOMENT without seconds: what a date and time form field can name."""
    return moment.replace(second=0, microsecond=0)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when_fields(prefix: str, moment: datetime, zone: str) -> dict[str, str]:
    """The WhenForm fields naming MOMENT as a date and time in ZONE."""
    local = moment.astimezone(ZoneInfo(zone))
    return {
        f"{prefix}-when": "chosen",
        f"{prefix}-date": local.strftime("%Y-%m-%d"),
        f"{prefix}-time": local.strftime("%H:%M"),
        f"{prefix}-timezone": zone,
    }


def share(session: Session, partner: Partner) -> tuple[ShareLink, str]:
    """A download and upload link for PARTNER, with its token."""
    return links.create_link(
        session,
        factories.ACTOR,
        link_signer(),
        partner,
        can_download=True,
        can_upload=True,
        lifetime=timedelta(days=14),
        max_uploads=5,
        now=utcnow(),
    )


def receive(session: Session, link: ShareLink, **extra: Any) -> Submission:
    """A received submission of a fresh partner certificate that raises no warning."""
    cert, _ = certfactory.make_cert(
        now=utcnow(), days=400, key=certfactory.rsa_key(3072), subject=certfactory.name("GLOBEX")
    )
    outcome = submissions.submit_via_link(
        session, factories.ACTOR, link, data=certfactory.pem(cert), usage="both", now=utcnow(),
        overlap=OVERLAP, confirm_warnings=True, **extra,
    )  # fmt: skip
    assert outcome.submission is not None, outcome.report.to_dict()
    return outcome.submission


def partner_proposes(session: Session, link: ShareLink, starts_at: datetime) -> ChangeWindow:
    """The partner proposes STARTS_AT on their link page (the window form of step 3)."""
    return windows.propose_window(
        session, links.partner_actor(link, None, None), link, starts_at=starts_at,
        timezone="Europe/Berlin", contact_name="Grace", contact_email=None, now=utcnow(),
    )  # fmt: skip


def events(session: Session, action: str, **details: Any) -> list[AuditEvent]:
    found = session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()
    return [e for e in found if all(e.details.get(k) == v for k, v in details.items())]


def partner_certificates(session: Session, partner: Partner) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.partner_id == partner.id)))


@pytest.fixture
def proposal(session: Session) -> dict[str, Any]:
    """A partner with a received submission and an open window they proposed on their page."""
    partner = factories.partner(session, timezone="Europe/Berlin")
    link, token = share(session, partner)
    submission = receive(session, link)
    starts_at = minute(utcnow() + timedelta(days=3))
    window = partner_proposes(session, link, starts_at)
    return {
        "partner": partner,
        "link": link,
        "token": token,
        "submission": submission,
        "starts_at": starts_at,
        "window": window,
    }


def assert_agreed_on_both_sides(
    session: Session, client: FlaskClient, staff: FlaskClient, proposal: dict[str, Any]
) -> None:
    """The window is accepted, audited, and both the partner and the staff pages say so."""
    window, partner, starts_at = proposal["window"], proposal["partner"], proposal["starts_at"]
    session.refresh(window)
    assert window.status == "accepted"
    (event,) = events(session, "window.accepted", window_id=window.id)
    assert "that time" in event.details["because"]
    assert "Agreed the change window" in event.summary

    partner_page = text_of(client.get(f"/s/{proposal['token']}"))
    assert f"Agreed: {format_in_zone(starts_at, 'Europe/Berlin')}" in partner_page
    assert "we will confirm" not in partner_page

    staff_page = text_of(staff.get(f"/partners/{partner.id}"))
    assert "proposed by the partner" not in staff_page
    assert f"{format_in_zone(starts_at, 'Europe/Berlin')} · agreed" in staff_page


# ---------------------------------------------------------------------------
# 6. Approving or scheduling at a proposed window's time agrees that window
# ---------------------------------------------------------------------------


def test_approving_at_the_partners_proposal_agrees_their_window(
    session, client, approver_client, proposal
) -> None:
    submission = proposal["submission"]
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert response.status_code == 302, text_of(response)
    (certificate,) = partner_certificates(session, proposal["partner"])
    assert certificate.activate_at == proposal["starts_at"]
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_approving_at_a_chosen_time_equal_to_the_proposal_agrees_the_window(
    session, client, approver_client, proposal
) -> None:
    submission = proposal["submission"]
    response = approver_client.post(
        f"/submissions/{submission.id}/approve",
        data=when_fields("approve", proposal["starts_at"], "America/New_York"),
    )
    assert response.status_code == 302, text_of(response)
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_approving_on_the_command_line_at_the_proposed_time_agrees_the_window(
    session, client, runner, approver, approver_client, proposal
) -> None:
    session.commit()  # the command shares this session
    result = runner.invoke(
        args=[
            "submission", "approve", str(proposal["submission"].id),
            "--activate-at", iso_z(proposal["starts_at"]), "--as", approver.email,
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_the_window_uploaded_with_the_certificate_is_agreed_by_approving_at_it(
    session, client, approver_client
) -> None:
    partner = factories.partner(session, timezone="Europe/Berlin")
    link, token = share(session, partner)
    starts_at = minute(utcnow() + timedelta(days=5))
    submission = receive(
        session, link, proposed_window_start=starts_at, proposed_timezone="Asia/Tokyo"
    )
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert response.status_code == 302, text_of(response)
    (window,) = session.scalars(select(ChangeWindow).where(ChangeWindow.partner_id == partner.id))
    proposal = {"window": window, "partner": partner, "token": token, "starts_at": starts_at}
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_approving_at_another_time_leaves_the_partners_proposal_open(
    session, approver_client, proposal
) -> None:
    submission = proposal["submission"]
    other = proposal["starts_at"] + timedelta(hours=1)
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data=when_fields("approve", other, "UTC")
    )
    assert response.status_code == 302, text_of(response)
    session.refresh(proposal["window"])
    assert proposal["window"].status == "proposed"
    assert events(session, "window.accepted") == []


def test_with_four_eyes_the_window_is_agreed_by_the_second_approval(
    app: Flask, session, client, approver_client, make_user, login, proposal
) -> None:
    reconfigure(app, FOUR_EYES_ALWAYS=True)
    submission, window = proposal["submission"], proposal["window"]
    first = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert first.status_code == 302, text_of(first)
    session.refresh(window)
    assert window.status == "proposed"  # nothing is decided yet

    second_client = login(make_user("approver"))
    second = second_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert second.status_code == 302, text_of(second)
    assert_agreed_on_both_sides(session, client, second_client, proposal)


def test_moving_a_partner_certificate_to_their_proposed_time_agrees_the_window(
    session, client, approver, approver_client, proposal
) -> None:
    submission = proposal["submission"]
    approvals.approve_submission(
        session,
        Actor.for_user(approver),
        submission,
        activate_at=proposal["starts_at"] + timedelta(days=1),
        now=utcnow(),
    )
    (certificate,) = partner_certificates(session, proposal["partner"])
    assert proposal["window"].status == "proposed"
    response = approver_client.post(
        f"/certificates/{certificate.id}/reschedule",
        data=when_fields("reschedule", proposal["starts_at"], "Europe/Berlin"),
    )
    assert response.status_code == 302, text_of(response)
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_approving_our_schedule_at_a_partners_proposed_time_agrees_their_window(
    session, client, make_user, login, approver_client, proposal
) -> None:
    identity = proposal["partner"].identity
    ours = factories.identity_certificate(session, keyring(), identity)
    operator_client = login(make_user("operator"))
    proposed = operator_client.post(
        f"/certificates/{ours.id}/schedule",
        data=when_fields("schedule", proposal["starts_at"], "Europe/Berlin"),
    )
    assert proposed.status_code == 302, text_of(proposed)
    assert proposal["window"].status == "proposed"  # one person's proposal agrees nothing

    approved = approver_client.post(
        f"/certificates/{ours.id}/approve-schedule",
        data={"expected": proposal["starts_at"].isoformat()},
    )
    assert approved.status_code == 302, text_of(approved)
    assert ours.activate_at == proposal["starts_at"]
    assert_agreed_on_both_sides(session, client, approver_client, proposal)
    (event,) = events(session, "window.accepted", window_id=proposal["window"].id)
    assert colon_fingerprint(ours.sha256)[:23] in event.details["because"]


def test_approving_our_schedule_on_the_command_line_agrees_the_partners_window(
    session, client, runner, make_user, approver, approver_client, proposal
) -> None:
    identity = proposal["partner"].identity
    ours = factories.identity_certificate(session, keyring(), identity)
    operator = make_user("operator")
    session.commit()
    for email in (operator.email, approver.email):
        result = runner.invoke(
            args=[
                "identity", "schedule", "--as2-id", identity.as2_id,
                "--certificate", colon_fingerprint(ours.sha256),
                "--activate-at", iso_z(proposal["starts_at"]), "--as", email,
            ]
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert ours.activate_at == proposal["starts_at"]
    assert_agreed_on_both_sides(session, client, approver_client, proposal)


def test_our_own_proposed_window_still_waits_for_the_partner(
    session, client, approver_client, make_user
) -> None:
    # Choosing the time we proposed ourselves is not the partner's agreement: it stays
    # proposed, and the partner can still accept it on their page.
    partner = factories.partner(session, timezone="Europe/Berlin")
    link, token = share(session, partner)
    submission = receive(session, link)
    starts_at = minute(utcnow() + timedelta(days=4))
    window = windows.propose_window_as_staff(
        session, Actor.for_user(make_user("operator")), partner, starts_at=starts_at,
        timezone="Europe/Berlin", now=utcnow(),
    )  # fmt: skip
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data=when_fields("approve", starts_at, "UTC")
    )
    assert response.status_code == 302, text_of(response)
    session.refresh(window)
    assert window.status == "proposed"
    assert events(session, "window.accepted") == []
    assert "Accept this time" in text_of(client.get(f"/s/{token}"))


# ---------------------------------------------------------------------------
# 9b. "Send this certificate" without the tick says what needs confirming
# ---------------------------------------------------------------------------


def confirmation_step(client: FlaskClient, token: str) -> dict[str, Any]:
    """Step 1 with a certificate that warns (RSA 2048): the form of step 2 as the page fills it."""
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key=certfactory.rsa_key(2048))
    first = client.post(
        f"/s/{token}/upload",
        data={"certificate": (io.BytesIO(certfactory.pem(cert)), "partner.pem"), "usage": "both"},
    )
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "Please confirm" in page
    carried = re.search(r'name="carried" type="hidden" value="([^"]*)"', page)
    assert carried is not None, page
    return {"carried": carried.group(1), "usage": "both"}


def test_sending_without_ticking_the_warnings_box_says_what_to_confirm_next_to_it(
    session, client
) -> None:
    partner = factories.partner(session)
    _, token = share(session, partner)
    step_two = confirmation_step(client, token)

    response = client.post(f"/s/{token}/upload", data=step_two)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    box = re.search(
        r'<div class="field has-error">\s*<label><input[^>]*name="confirm_warnings"[^>]*>.*?</div>',
        page,
        re.S,
    )
    assert box is not None, page
    assert "Tick this box to confirm you read the warnings above" in box.group(0)
    assert "Send this certificate" in page  # still on step 2, the file still carried
    assert (
        session.scalars(select(Submission).where(Submission.partner_id == partner.id)).all() == []
    )

    ticked = client.post(f"/s/{token}/upload", data={**step_two, "confirm_warnings": "y"})
    assert ticked.status_code == 302


# ---------------------------------------------------------------------------
# 9c. The approval queue shows the proposed window, in the viewer's zone with UTC
# ---------------------------------------------------------------------------


def queue_row(page: str, submission: Submission) -> str:
    row = re.search(rf'<tr>\s*<td><a href="/submissions/{submission.id}">.*?</tr>', page, re.S)
    assert row is not None, page
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row.group(0))).split())


def test_the_approval_queue_shows_each_proposed_window_in_the_viewers_zone(
    session, make_user, login
) -> None:
    viewer = login(make_user("viewer", timezone="America/New_York"))
    on_page = factories.partner(session, timezone="Europe/Berlin")
    link, _ = share(session, on_page)
    proposed_on_page = receive(session, link)
    starts_at = minute(utcnow() + timedelta(days=3))
    partner_proposes(session, link, starts_at)  # step 3 of the link page, not the upload
    with_upload = factories.partner(session)
    other_link, _ = share(session, with_upload)
    uploaded_at = minute(utcnow() + timedelta(days=6))
    proposed_with_upload = receive(
        session, other_link, proposed_window_start=uploaded_at, proposed_timezone="Asia/Tokyo"
    )
    no_window = receive(session, share(session, factories.partner(session))[0])

    page = viewer.get("/submissions").get_data(as_text=True)

    assert format_in_zone(starts_at, "America/New_York") in queue_row(page, proposed_on_page)
    assert format_in_zone(uploaded_at, "America/New_York") in queue_row(page, proposed_with_upload)
    assert "JST" not in queue_row(page, proposed_with_upload)
    assert queue_row(page, no_window).endswith("— received")


# ---------------------------------------------------------------------------
# 9d. Our schedules waiting for a second approval are in the queue and on the dashboard
# ---------------------------------------------------------------------------


@pytest.fixture
def waiting_schedule(session: Session, make_user: Callable[..., User]) -> Certificate:
    """Our certificate whose time an operator proposed (four eyes: it waits for an approver)."""
    identity = factories.identity(session, name="Acme Main Station")
    certificate = factories.identity_certificate(session, keyring(), identity)
    operator = make_user("operator")
    schedule.schedule_identity_certificate(
        session, Actor.for_user(operator), certificate, activate_at=utcnow() + timedelta(days=2),
        now=utcnow(),
    )  # fmt: skip
    # Neither an approved schedule nor a withdrawn proposal waits for anyone.
    approved = factories.identity_certificate(session, keyring(), identity)
    schedule.schedule_identity_certificate(
        session, Actor.for_user(operator), approved, activate_at=utcnow() + timedelta(days=3),
        now=utcnow(),
    )  # fmt: skip
    schedule.approve_identity_schedule(
        session, Actor.for_user(make_user("approver")), approved, now=utcnow()
    )
    withdrawn = factories.identity_certificate(session, keyring(), identity)
    schedule.schedule_identity_certificate(
        session, Actor.for_user(operator), withdrawn, activate_at=utcnow() + timedelta(days=4),
        now=utcnow(),
    )  # fmt: skip
    schedule.cancel_schedule(
        session, Actor.for_user(operator), withdrawn, reason="wrong key", now=utcnow()
    )
    return certificate


def test_approvers_find_our_schedules_waiting_for_them_in_the_approval_queue(
    session, approver_client, waiting_schedule
) -> None:
    response = approver_client.get("/submissions")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Our certificates waiting for a second approval (1)" in page
    assert f'href="/certificates/{waiting_schedule.id}"' in page
    assert page.count('href="/certificates/') == 1
    assert html.escape(format_in_zone(waiting_schedule.proposed_activate_at, "UTC")) in page
    # The link leads to the page where the approver confirms it.
    certificate_page = approver_client.get(f"/certificates/{waiting_schedule.id}")
    assert "Approve schedule" in certificate_page.get_data(as_text=True)


def test_the_dashboard_counts_and_links_our_schedules_waiting_for_approval(
    session, approver_client, waiting_schedule
) -> None:
    page = approver_client.get("/").get_data(as_text=True)
    assert "Our schedules waiting for a second approval (1)" in page
    assert f'href="/certificates/{waiting_schedule.id}"' in page


# ---------------------------------------------------------------------------
# 9e. "Add a user" starts at the least privilege
# ---------------------------------------------------------------------------


def test_add_a_user_preselects_the_viewer_role(admin_client) -> None:
    page = admin_client.get("/users/new").get_data(as_text=True)
    select_box = re.search(r'<select[^>]*name="role".*?</select>', page, re.S)
    assert select_box is not None, page
    assert re.findall(r'<option selected value="([^"]+)"', select_box.group(0)) == ["viewer"]


# ---------------------------------------------------------------------------
# 9f. The SQLite database and its -wal and -shm files are readable by the owner only
# ---------------------------------------------------------------------------


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems have (022), which makes new files world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(database: Path) -> dict[str, str]:
    return {
        suffix: oct(stat.S_IMODE((database.parent / f"{database.name}{suffix}").stat().st_mode))
        for suffix in ("", "-wal", "-shm")
    }


def init_and_write(app: Flask, email: str = "new@example.com") -> None:
    """`portal init`, then a write, with the engine's connections still open."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["user", "create", email, "--role", "viewer"])
    assert result.exit_code == 0, result.output


def test_portal_init_creates_the_sqlite_files_readable_by_the_owner_only(
    tmp_path: Path, usual_umask: None
) -> None:
    database = tmp_path / "portal.sqlite3"
    app = create_app(test_settings(tmp_path, f"sqlite:///{database}"))
    init_and_write(app)
    with app.app_context(), db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT count(*) FROM users")
        assert modes(database) == {"": "0o600", "-wal": "0o600", "-shm": "0o600"}
    with app.app_context():
        db.engine.dispose()


def test_portal_init_tightens_a_world_readable_database(tmp_path: Path, usual_umask: None) -> None:
    database = tmp_path / "portal.sqlite3"
    app = create_app(test_settings(tmp_path, f"sqlite:///{database}"))
    init_and_write(app)
    with app.app_context():
        db.engine.dispose()  # the last connection removes -wal and -shm
    database.chmod(0o644)  # as an earlier version left it
    init_and_write(app, "second@example.com")
    with app.app_context(), db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT count(*) FROM users")
        assert modes(database) == {"": "0o600", "-wal": "0o600", "-shm": "0o600"}
    with app.app_context():
        db.engine.dispose()
