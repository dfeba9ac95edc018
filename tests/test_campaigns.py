"""Rotation campaigns: start (CLI and page), refusals, emails over real SMTP, the board."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from portal.extensions import keyring
from portal.models import (
    AuditEvent,
    Campaign,
    CampaignPartner,
    Certificate,
    ChangeWindow,
    OutboxMessage,
    ShareLink,
)
from portal.services import audit, campaign_board
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure
from tests.schedulehelpers import iso_z

BASE = "http://portal.test"


@pytest.fixture
def rotation(session) -> dict[str, Any]:
    """Our identity with a new certificate and three partners: two reachable, one not."""
    identity = factories.identity(session, organisation="Acme Corp")
    certificate = factories.identity_certificate(session, keyring(), identity)
    berlin = factories.partner(
        session, identity, name="Berlin Trading", as2_id="BERLIN",
        contact_emails=["edi@berlin.example", "ops@berlin.example"], timezone="Europe/Berlin",
    )  # fmt: skip
    tokyo = factories.partner(
        session, identity, name="Tokyo Goods", as2_id="TOKYO",
        contact_emails=["edi@tokyo.example"], timezone="Asia/Tokyo",
    )  # fmt: skip
    silent = factories.partner(session, identity, name="Silent Ltd", as2_id="SILENT")
    # The partner form insists on a contact; older rows (and imports) may have none.
    silent.contacts.clear()
    session.commit()
    return {
        "identity": identity,
        "certificate": certificate,
        "berlin": berlin,
        "tokyo": tokyo,
        "silent": silent,
        "at": (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0),
    }


def start_cli(runner, rotation: dict[str, Any], *extra: str, at=None):
    return runner.invoke(
        args=[
            "campaign", "start", "--identity", rotation["identity"].as2_id,
            "--certificate", rotation["certificate"].sha256,
            "--activate-at", iso_z(at or rotation["at"]), *extra,
        ]
    )  # fmt: skip


def only_campaign(session) -> Campaign:
    return session.scalars(select(Campaign)).one()


def members(session, campaign: Campaign) -> dict[str, CampaignPartner]:
    rows = session.scalars(
        select(CampaignPartner).where(CampaignPartner.campaign_id == campaign.id)
    ).all()
    return {row.partner.as2_id: row for row in rows}


def status_json(runner, campaign_id: int) -> dict[str, Any]:
    result = runner.invoke(args=["campaign", "status", str(campaign_id), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def states(runner, campaign_id: int) -> dict[str, str]:
    return {p["as2_id"]: p["state"] for p in status_json(runner, campaign_id)["partners"]}


# Starting ------------------------------------------------------------------------------------


def test_cli_start_reaches_every_partner_in_one_go(runner, session, rotation) -> None:
    result = start_cli(runner, rotation, "--request-upload", "--message", "Call us on 555")

    assert result.exit_code == 0, result.output
    assert "3 partners, 2 emails queued, 1 unreachable" in result.output
    assert "Email is off" in result.output  # the emails wait in the outbox
    campaign = only_campaign(session)
    assert campaign.request_upload
    assert campaign.message == "Call us on 555"
    rows = members(session, campaign)
    assert set(rows) == {"BERLIN", "TOKYO", "SILENT"}
    for row in rows.values():
        assert row.link is not None
        assert row.link.can_download
        assert row.link.can_upload
        assert row.link.expires_at == campaign.activate_at + campaign_board.LINK_AFTER_SWITCH
    assert rows["SILENT"].unreachable
    assert rows["SILENT"].message_id is None
    berlin_mail = session.get(OutboxMessage, rows["BERLIN"].message_id)
    assert berlin_mail.recipients == ["edi@berlin.example", "ops@berlin.example"]
    assert berlin_mail.link_id == rows["BERLIN"].link_id
    # Our certificate is proposed for T; approval is a second person's (four eyes).
    certificate = session.get(Certificate, rotation["certificate"].id)
    session.refresh(certificate)
    assert certificate.proposed_activate_at == rotation["at"]
    assert certificate.activate_at is None
    # A change window at T for each partner, whose .ics the link's page offers.
    windows = session.scalars(select(ChangeWindow).where(ChangeWindow.starts_at == rotation["at"]))
    assert {w.partner_id for w in windows} == {r.partner_id for r in rows.values()}
    # Audit: one event for the campaign, per partner the link and its email (or why not).
    actions = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.details["campaign_id"].as_integer() == campaign.id
        )
    ).all()
    assert sorted(actions) == sorted(
        ["link.created"] * 3 + ["window.proposed"] * 3 + ["link.emailed"] * 2
        + ["campaign.unreachable"]
    )  # fmt: skip
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "campaign.started")
        )
        == 1
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("other identity", "is not a certificate of identity"),
        ("no key", "has no private key here"),
        ("past", "in the past"),
        ("after expiry", "expires on"),
        ("no partners", "has no partners to reach"),
    ],
)
def test_cli_refusals_are_one_line_and_write_nothing(
    runner, session, rotation, change: str, message: str
) -> None:
    at = rotation["at"]
    if change == "other identity":
        other = factories.identity(session)
        rotation["certificate"] = factories.identity_certificate(session, keyring(), other)
    elif change == "no key":
        rotation["certificate"].encrypted_private_key = None
    elif change == "past":
        at = utcnow() - timedelta(hours=1)
    elif change == "after expiry":
        at = rotation["certificate"].not_after + timedelta(days=1)
    else:
        lonely = factories.identity(session)
        rotation["identity"] = lonely
        rotation["certificate"] = factories.identity_certificate(session, keyring(), lonely)
    session.commit()
    links_before = session.scalar(select(func.count()).select_from(ShareLink))

    result = start_cli(runner, rotation, at=at)

    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    assert session.scalar(select(func.count()).select_from(ShareLink)) == links_before


def test_cli_start_as_a_viewer_is_refused(runner, session, rotation, make_user) -> None:
    viewer = make_user("viewer")
    session.commit()

    result = start_cli(runner, rotation, "--as", viewer.email)

    assert result.exit_code == 1
    assert "may not do this" in result.output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_second_campaign_for_the_certificate_names_the_first(runner, session, rotation) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    first = only_campaign(session)

    again = start_cli(runner, rotation, at=rotation["at"] + timedelta(days=1))

    assert again.exit_code == 1
    assert f"Campaign #{first.id} already rotates to this certificate" in again.output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1


# Emails over a real SMTP server on loopback --------------------------------------------------


def delivered(handler) -> list[Any]:
    return [message_from_bytes(e.content, policy=policy.default) for e in handler.messages]


def test_run_due_delivers_one_email_per_partner_with_its_link_and_times(
    app, runner, session, client, rotation, smtp_server
) -> None:
    from zoneinfo import ZoneInfo

    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    typed = f"Questions? Call us. {BASE}/s/not-a-real-link"
    assert start_cli(runner, rotation, "--message", typed).exit_code == 0

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    by_recipients = {tuple(sorted(e.rcpt_tos)): e for e in handler.messages}
    assert set(by_recipients) == {
        ("edi@berlin.example", "ops@berlin.example"),
        ("edi@tokyo.example",),
    }
    messages = {m["To"]: m for m in delivered(handler)}
    berlin = next(m for to, m in messages.items() if "berlin" in to)
    at = rotation["at"]
    assert berlin["Subject"] == f"Acme Corp changes its AS2 certificate on {at:%Y-%m-%d %H:%M} UTC"
    body = berlin.get_body(preferencelist=("plain",)).get_content()
    local = at.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()} (Europe/Berlin)" in body
    assert f"that is {at:%Y-%m-%d %H:%M} UTC" in body
    assert typed in body  # the note, as typed; its text is no link of ours
    urls = re.findall(rf"{BASE}/s/[A-Za-z0-9._-]+", body)
    assert len(urls) == 2
    assert urls[1] == f"{BASE}/s/not-a-real-link"
    page = client.get(urls[0].removeprefix(BASE))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Berlin Trading" in text
    assert "Tokyo Goods" not in text
    assert "window.ics" in text  # the calendar invitation for the switch
    ics = client.get(urls[0].removeprefix(BASE) + "/window.ics")
    assert ics.status_code == 200
    (event,) = Calendar.from_ical(ics.data).walk("VEVENT")
    assert event.decoded("dtstart") == at
    assert f"{local:%Y-%m-%d %H:%M}" in str(event.get("description"))


# The board -----------------------------------------------------------------------------------


def token_of(app, link_id: str) -> str:
    from portal.extensions import link_signer

    with app.app_context():
        return link_signer().sign(link_id)


def test_the_board_moves_as_a_partner_opens_downloads_and_acknowledges(
    app, runner, session, client, clock, rotation
) -> None:
    clock.set(utcnow())
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)
    page = f"/s/{token_of(app, members(session, campaign)['BERLIN'].link_id)}"
    assert states(runner, campaign.id) == {"BERLIN": "sent", "TOKYO": "sent", "SILENT": "sent"}

    clock.advance(timedelta(hours=1))
    assert client.get(page).status_code == 200
    assert states(runner, campaign.id)["BERLIN"] == "opened"

    sha = rotation["certificate"].sha256
    assert client.get(f"{page}/certificates/{sha}.pem").status_code == 200
    assert states(runner, campaign.id)["BERLIN"] == "downloaded"

    assert client.post(f"{page}/acknowledge", data={"contact_name": "Eve"}).status_code == 302
    document = status_json(runner, campaign.id)
    assert {p["as2_id"]: p["state"] for p in document["partners"]}["BERLIN"] == "acknowledged"
    assert document["counts"] == {"sent": 2, "opened": 0, "downloaded": 0, "acknowledged": 1}
    assert document["id"] == campaign.id
    assert document["identity"] == rotation["identity"].as2_id
    assert document["certificate"] == sha
    assert document["activate_at"] == rotation["at"].isoformat()
    flags = {p["as2_id"]: (p["unreachable"], p["at_risk"]) for p in document["partners"]}
    assert flags == {"BERLIN": (False, False), "TOKYO": (False, False), "SILENT": (True, False)}

    # Three days before T, whoever has not acknowledged is at risk.
    clock.set(rotation["at"] - timedelta(days=3))
    at_risk = {p["as2_id"] for p in status_json(runner, campaign.id)["partners"] if p["at_risk"]}
    assert at_risk == {"TOKYO", "SILENT"}


def test_an_acknowledgement_from_before_the_campaign_does_not_count(
    app, runner, session, client, clock, rotation
) -> None:
    from portal.services import acknowledgements

    earlier = factories.share_link(session, rotation["tokyo"])
    acknowledgements.acknowledge(
        session, factories.ACTOR, earlier, certificate=None, installed_on=None,
        contact_name=None, now=utcnow() - timedelta(days=30),
    )  # fmt: skip
    session.commit()
    assert start_cli(runner, rotation).exit_code == 0

    assert states(runner, only_campaign(session).id)["TOKYO"] == "sent"


def test_uploads_move_through_approved_to_in_force_when_asked_for(
    app, runner, session, clock, rotation, make_user
) -> None:
    from portal.services import approvals
    from tests.schedulehelpers import actor, receive

    now = utcnow()
    clock.set(now)
    assert start_cli(runner, rotation, "--request-upload").exit_code == 0
    campaign = only_campaign(session)
    link = members(session, campaign)["TOKYO"].link
    submission = receive(session, link, now=now)
    session.commit()
    document = status_json(runner, campaign.id)
    assert {p["as2_id"]: p["state"] for p in document["partners"]}["TOKYO"] == "uploaded"
    assert set(document["counts"]) == {
        "sent", "opened", "downloaded", "acknowledged", "uploaded", "approved", "in force"
    }  # fmt: skip

    approvals.approve_submission(
        session, actor(make_user("approver")), submission, activate_at=rotation["at"], now=now
    )
    session.commit()
    assert states(runner, campaign.id)["TOKYO"] == "approved"

    clock.set(rotation["at"] + timedelta(minutes=1))
    assert states(runner, campaign.id)["TOKYO"] == "in force"


def test_status_text_lists_counts_and_partners(runner, session, rotation) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)

    result = runner.invoke(args=["campaign", "status", str(campaign.id)])

    assert result.exit_code == 0, result.output
    assert "sent: 3" in result.output
    assert "unreachable: 1" in result.output
    assert re.search(r"SILENT\s+sent\s+Silent Ltd  \(unreachable\)", result.output)
    assert runner.invoke(args=["campaign", "status", "999999"]).exit_code == 1


# The pages -----------------------------------------------------------------------------------


def page_fields(rotation: dict[str, Any], **changes: Any) -> dict[str, Any]:
    fields = {
        "identity": str(rotation["identity"].id),
        "certificate": rotation["certificate"].sha256,
        "date": rotation["at"].strftime("%Y-%m-%d"),
        "time": rotation["at"].strftime("%H:%M"),
        "timezone": "UTC",
        "message": "Questions? Write to edi@acme.example",
    }
    fields.update(changes)
    return fields


def test_an_operator_starts_a_campaign_on_the_page(operator_client, session, rotation) -> None:
    response = operator_client.post("/campaigns", data=page_fields(rotation, request_upload="y"))

    assert response.status_code == 302
    campaign = only_campaign(session)
    assert response.location.endswith(f"/campaigns/{campaign.id}")
    assert campaign.activate_at == rotation["at"]
    assert campaign.request_upload
    board = operator_client.get(response.location)
    text = board.get_data(as_text=True)
    assert board.status_code == 200
    for name in ("Berlin Trading", "Tokyo Goods", "Silent Ltd"):
        assert name in text
    assert "Sent: 3" in text
    assert "Unreachable: 1" in text
    assert f'href="/partners/{rotation["berlin"].id}"' in text
    assert "schedule waits for a second person" in text
    assert "Campaigns" in operator_client.get("/campaigns").get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"certificate": "ab" * 32}, "is not a certificate of identity"),
        ({"date": "2001-01-01"}, "in the past"),
        ({"date": ""}, "Give the date and time of the switch."),
    ],
)
def test_a_refused_start_is_422_with_the_field_marked(
    operator_client, session, rotation, changes, field_error
) -> None:
    response = operator_client.post("/campaigns", data=page_fields(rotation, **changes))

    assert response.status_code == 422
    assert field_error in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_the_second_campaign_on_the_page_names_the_first(
    operator_client, session, rotation
) -> None:
    assert operator_client.post("/campaigns", data=page_fields(rotation)).status_code == 302
    first = only_campaign(session)

    again = operator_client.post("/campaigns", data=page_fields(rotation))

    assert again.status_code == 422
    assert f"Campaign #{first.id} already rotates" in again.get_data(as_text=True)


def test_viewers_see_boards_but_cannot_start(viewer_client, runner, session, rotation) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)

    listing = viewer_client.get("/campaigns").get_data(as_text=True)
    assert "Start the campaign" not in listing
    assert viewer_client.get(f"/campaigns/{campaign.id}").status_code == 200
    assert viewer_client.post("/campaigns", data=page_fields(rotation)).status_code == 403


def test_board_filters_searches_pages_and_exports_csv(
    app, operator_client, runner, session, rotation
) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)
    board = f"/campaigns/{campaign.id}"

    text = operator_client.get(f"{board}?state=unreachable").get_data(as_text=True)
    assert "Silent Ltd" in text
    assert "Tokyo Goods" not in text
    text = operator_client.get(f"{board}?q=tokyo").get_data(as_text=True)
    assert "Tokyo Goods" in text
    assert "Berlin Trading" not in text
    reconfigure(app, PAGE_SIZE=2)
    first = operator_client.get(board).get_data(as_text=True)
    assert "Page 1 of 2" in first
    assert "Berlin Trading" in first  # by name: Berlin, Silent | Tokyo
    assert "Tokyo Goods" in operator_client.get(f"{board}?page=2").get_data(as_text=True)

    exported = operator_client.get(f"{board}/board.csv")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["as2_id"], r["state"], r["unreachable"]) for r in lines] == [
        ("BERLIN", "sent", "False"), ("SILENT", "sent", "True"), ("TOKYO", "sent", "False")
    ]  # fmt: skip
    only_silent = operator_client.get(f"{board}/board.csv?state=unreachable").get_data(as_text=True)
    assert [r["as2_id"] for r in csv.DictReader(io.StringIO(only_silent))] == ["SILENT"]
    exports = audit.latest_for(session, "campaign", campaign.id, limit=2)
    assert [(e.action, e.details["partners"]) for e in exports] == [
        ("campaign.exported", 1), ("campaign.exported", 3)
    ]  # fmt: skip


def test_a_formula_in_a_partner_name_is_text_in_the_csv(
    operator_client, runner, session, rotation
) -> None:
    rotation["tokyo"].name = "=HYPERLINK(1)"
    session.commit()
    assert start_cli(runner, rotation).exit_code == 0

    exported = operator_client.get(f"/campaigns/{only_campaign(session).id}/board.csv")

    names = [r["name"] for r in csv.DictReader(io.StringIO(exported.get_data(as_text=True)))]
    assert "'=HYPERLINK(1)" in names


def test_resend_queues_a_new_email_and_revoke_stops_the_link(
    app, operator_client, runner, session, client, clock, rotation
) -> None:
    clock.set(utcnow())
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)
    berlin = members(session, campaign)["BERLIN"]
    first_message = berlin.message_id
    base = f"/campaigns/{campaign.id}/partners/{rotation['berlin'].id}"

    clock.advance(timedelta(minutes=5))
    assert operator_client.post(f"{base}/resend").status_code == 302
    session.refresh(berlin)
    assert berlin.message_id != first_message
    again = session.get(OutboxMessage, berlin.message_id)
    assert again.recipients == ["edi@berlin.example", "ops@berlin.example"]
    assert again.link_id == berlin.link_id
    assert again.dedupe_key != session.get(OutboxMessage, first_message).dedupe_key
    resent = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.emailed",
                                 AuditEvent.object_id == str(rotation["berlin"].id))
    ).all()  # fmt: skip
    assert len(resent) == 2

    silent = f"/campaigns/{campaign.id}/partners/{rotation['silent'].id}/resend"
    refused = operator_client.post(silent, follow_redirects=True)
    assert "has no contact email" in refused.get_data(as_text=True)

    assert operator_client.post(f"{base}/revoke").status_code == 302
    token = token_of(app, berlin.link_id)
    assert client.get(f"/s/{token}").status_code == 410
    revoked = session.scalars(select(AuditEvent).where(AuditEvent.action == "link.revoked")).all()
    assert [e.details["link_id"] for e in revoked] == [berlin.link_id]
    assert "revoked" in operator_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    refused = operator_client.post(f"{base}/resend", follow_redirects=True)
    assert "no longer works" in refused.get_data(as_text=True)


def test_a_partner_added_after_the_start_is_listed_as_not_in_the_campaign(
    operator_client, runner, session, rotation
) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    factories.partner(session, rotation["identity"], name="Latecomer GmbH", as2_id="LATE")
    session.commit()

    text = operator_client.get(f"/campaigns/{only_campaign(session).id}").get_data(as_text=True)

    assert "Latecomer GmbH" in text
    assert "not in this campaign" in text


def test_including_a_latecomer_gives_it_a_link_and_an_email(
    operator_client, runner, session, rotation
) -> None:
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)
    late = factories.partner(session, rotation["identity"], name="Latecomer GmbH", as2_id="LATE")
    session.commit()

    response = operator_client.post(f"/campaigns/{campaign.id}/partners/{late.id}/include")

    assert response.status_code == 302
    row = members(session, campaign)["LATE"]
    assert row.link is not None
    assert session.get(OutboxMessage, row.message_id).recipients == late.contact_emails
    assert states(runner, campaign.id)["LATE"] == "sent"
    text = operator_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "not in this campaign" not in text
    again = operator_client.post(f"/campaigns/{campaign.id}/partners/{late.id}/include")
    assert again.status_code == 302
    assert len(members(session, campaign)) == 4


def test_resend_to_all_at_risk_and_the_dashboard_count(
    app, operator_client, runner, session, client, clock, rotation
) -> None:
    clock.set(utcnow())
    assert start_cli(runner, rotation).exit_code == 0
    campaign = only_campaign(session)
    rows = members(session, campaign)
    page = f"/s/{token_of(app, rows['BERLIN'].link_id)}"
    assert client.post(f"{page}/acknowledge", data={"contact_name": "Eve"}).status_code == 302
    assert "partners at risk" not in operator_client.get("/").get_data(as_text=True)

    clock.set(rotation["at"] - timedelta(days=2))
    overview = operator_client.get("/").get_data(as_text=True)
    assert re.search(rf"Campaign {campaign.id} .*<strong>2</strong> partners at risk", overview)
    before = {as2_id: row.message_id for as2_id, row in rows.items()}

    response = operator_client.post(
        f"/campaigns/{campaign.id}/resend-at-risk", follow_redirects=True
    )

    text = response.get_data(as_text=True)
    assert "Email queued again to 1 partners at risk." in text
    assert "Silent Ltd: unreachable" in text
    after = members(session, campaign)
    assert after["TOKYO"].message_id != before["TOKYO"]
    assert after["BERLIN"].message_id == before["BERLIN"]  # acknowledged: not at risk
    assert after["SILENT"].message_id is None
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "campaign.resent_at_risk")
    ).all()
    assert len(events) == 1
