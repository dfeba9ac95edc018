"""Partner-certificate campaigns: ask many partners for new certificates, follow each one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.extensions import link_signer
from portal.models import AuditEvent, Campaign, CampaignPartner, ChangeWindow, OutboxMessage
from portal.services import approvals
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure
from tests.schedulehelpers import actor, iso_z, receive

BASE = "http://portal.test"
DAY = timedelta(days=1)


@pytest.fixture
def partners(session) -> dict[str, Any]:
    """An identity whose partners' certificates expire at known distances."""
    now = utcnow().replace(microsecond=0)
    identity = factories.identity(session, organisation="Acme Corp", as2_id="ACME")
    made = {
        key: factories.partner(
            session, identity, name=name, as2_id=key,
            contact_emails=[f"edi@{key.lower()}.example"], timezone="Europe/Berlin",
        )
        for key, name in (
            ("SOON", "Soon GmbH"), ("LATER", "Later Ltd"), ("NONE", "Nothing Yet SA"),
            ("REPLACED", "Replaced Inc"), ("SILENT", "Silent Co"),
        )
    }  # fmt: skip
    made["SILENT"].contacts.clear()  # older rows (and imports) may have no contact
    factories.partner_certificate_row(session, made["SOON"], now=now, expires_in=20 * DAY, n=1)
    factories.partner_certificate_row(session, made["LATER"], now=now, expires_in=200 * DAY, n=2)
    factories.partner_certificate_row(session, made["REPLACED"], now=now, expires_in=25 * DAY, n=3)
    factories.partner_certificate_row(
        session, made["REPLACED"], now=now, expires_in=400 * DAY, n=4, activate_in=10 * DAY
    )
    factories.partner_certificate_row(session, made["SILENT"], now=now, expires_in=30 * DAY, n=5)
    session.commit()
    return {
        "now": now, "identity": identity, **made,
        "due": (now + 14 * DAY).replace(second=0),
        "before": (now + 60 * DAY).replace(hour=0, minute=0, second=0),
    }  # fmt: skip


def request_cli(runner, data: dict[str, Any], *extra: str, due: datetime | None = None):
    return runner.invoke(
        args=[
            "campaign", "request", "--identity", "ACME", "--in-force-by", iso_z(due or data["due"]),
            "--expiring-before", iso_z(data["before"]), *extra,
        ]
    )  # fmt: skip


def the_campaign(session) -> Campaign:
    return session.scalars(select(Campaign)).one()


def rows_of(session, campaign: Campaign) -> dict[str, CampaignPartner]:
    found = session.scalars(
        select(CampaignPartner).where(CampaignPartner.campaign_id == campaign.id)
    )
    return {row.partner.as2_id: row for row in found}


def requests_in(handler) -> dict[str, Any]:
    """The campaign's emails the SMTP server received, by recipient.

    The rows the fixture inserts are in force already, so the runner also sends their
    "now in force" notices; those are not the campaign's.
    """
    found = {}
    for envelope in handler.messages:
        message = message_from_bytes(envelope.content, policy=policy.default)
        if "for a new AS2 certificate" in message["Subject"]:
            (recipient,) = envelope.rcpt_tos
            found[recipient] = message
    return found


def status(runner, campaign_id: int) -> dict[str, Any]:
    result = runner.invoke(args=["campaign", "status", str(campaign_id), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def states(runner, campaign_id: int) -> dict[str, str]:
    return {p["as2_id"]: p["state"] for p in status(runner, campaign_id)["partners"]}


def test_it_asks_the_partners_whose_certificate_expires_and_nobody_else(
    runner, session, partners
) -> None:
    result = request_cli(runner, partners, "--message", "Thanks!")

    assert result.exit_code == 0, result.output
    assert "asked 3 partners, 2 emails queued, 1 unreachable" in result.output
    campaign = the_campaign(session)
    assert campaign.kind == "partner_certificates"
    assert campaign.certificate_id is None
    assert campaign.activate_at == partners["due"]
    assert campaign.expiring_before == partners["before"]
    rows = rows_of(session, campaign)
    # LATER expires after the limit; REPLACED has its successor scheduled.
    assert set(rows) == {"SOON", "NONE", "SILENT"}
    for row in rows.values():
        assert row.link is not None
        assert not row.link.can_download  # upload only: nothing of ours to fetch
        assert row.link.can_upload
    assert rows["SILENT"].unreachable
    mail = session.get(OutboxMessage, rows["SOON"].message_id)
    assert mail.recipients == ["edi@soon.example"]
    assert mail.subject.startswith("Acme Corp asks Soon GmbH for a new AS2 certificate by")
    # No change window is proposed: the partner proposes one with its upload.
    assert session.scalar(select(func.count()).select_from(ChangeWindow)) == 0
    actions = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.details["campaign_id"].as_integer() == campaign.id
        )
    ).all()
    assert sorted(actions) == sorted(
        ["link.created"] * 3 + ["link.emailed"] * 2 + ["campaign.unreachable"]
    )
    started = session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.started"))
    assert "asked 3 partners of ACME for new certificates" in started.one().summary


def test_a_dry_run_lists_whom_and_why_and_changes_nothing(runner, session, partners) -> None:
    result = request_cli(runner, partners, "--dry-run")

    assert result.exit_code == 0, result.output
    assert re.search(r"SOON\s+Soon GmbH: its signing certificate expires on", result.output)
    assert re.search(r"NONE\s+Nothing Yet SA: no certificate in force", result.output)
    assert "LATER" not in result.output
    assert "Would ask 3 partners; nothing was changed." in result.output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_without_a_limit_every_partner_is_asked(runner, session, partners) -> None:
    result = runner.invoke(
        args=["campaign", "request", "--identity", "ACME", "--in-force-by", iso_z(partners["due"])]
    )

    assert result.exit_code == 0, result.output
    assert len(rows_of(session, the_campaign(session))) == 5


def test_a_partner_already_asked_is_left_out_and_named(runner, session, partners) -> None:
    assert request_cli(runner, partners).exit_code == 0
    first = the_campaign(session)
    factories.partner(session, partners["identity"], name="Newcomer BV", as2_id="NEW")
    session.commit()

    again = request_cli(runner, partners, due=partners["due"] + DAY)

    assert again.exit_code == 0, again.output
    assert "asked 1 partners" in again.output
    assert f"left out: Soon GmbH (SOON): already asked in campaign #{first.id}" in again.output
    second = session.scalars(select(Campaign).where(Campaign.id != first.id)).one()
    assert set(rows_of(session, second)) == {"NEW"}

    third = request_cli(runner, partners, due=partners["due"] + 2 * DAY)

    assert third.exit_code == 1
    assert "already asked by an open campaign" in third.output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("due past", "at least a day"),
        ("due tomorrow", "at least a day"),
        ("limit past", "expiry limit is in the past"),
        ("nobody", "No partner of ACME needs a new certificate"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    runner, session, partners, change: str, message: str
) -> None:
    due, limit = partners["due"], partners["before"]
    if change == "due past":
        due = partners["now"] - DAY
    elif change == "due tomorrow":
        due = partners["now"] + timedelta(hours=20)
    elif change == "limit past":
        limit = partners["now"] - DAY
    else:
        limit = partners["now"] + DAY
        for key in ("NONE",):
            factories.partner_certificate_row(
                session, partners[key], now=partners["now"], expires_in=90 * DAY, n=9
            )
        session.commit()

    result = request_cli(runner, {**partners, "before": limit}, due=due)

    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_emails_arrive_and_the_board_moves_to_in_force(
    app, runner, session, client, clock, partners, smtp_server, make_user
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    clock.set(partners["now"])
    assert request_cli(runner, partners).exit_code == 0
    campaign = the_campaign(session)

    assert runner.invoke(args=["run-due"]).exit_code == 0

    asked = requests_in(handler)
    assert sorted(asked) == ["edi@none.example", "edi@soon.example"]
    soon = asked["edi@soon.example"]
    body = soon.get_body(preferencelist=("plain",)).get_content()
    assert f"that is {partners['due']:%Y-%m-%d %H:%M} UTC" in body
    (url,) = re.findall(rf"{BASE}/s/[A-Za-z0-9._-]+", body)
    assert states(runner, campaign.id)["SOON"] == "sent"

    page = client.get(url.removeprefix(BASE))
    assert page.status_code == 200
    assert "Soon GmbH" in page.get_data(as_text=True)
    assert states(runner, campaign.id)["SOON"] == "opened"

    link = rows_of(session, campaign)["SOON"].link
    submission = receive(session, link, now=partners["now"])
    session.commit()
    assert states(runner, campaign.id)["SOON"] == "uploaded"

    activate = partners["due"] - DAY
    approvals.approve_submission(
        session, actor(make_user("approver")), submission, activate_at=activate,
        now=partners["now"],
    )  # fmt: skip
    session.commit()
    assert states(runner, campaign.id)["SOON"] == "approved"

    clock.set(activate + timedelta(minutes=1))
    document = status(runner, campaign.id)
    assert {p["as2_id"]: p["state"] for p in document["partners"]}["SOON"] == "in force"
    assert document["kind"] == "partner_certificates"
    assert document["certificate"] is None
    assert set(document["counts"]) == {"sent", "opened", "uploaded", "approved", "in force"}


def test_reminders_go_to_those_who_have_not_uploaded(
    app, runner, session, clock, partners, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    clock.set(partners["now"])
    assert request_cli(runner, partners).exit_code == 0
    campaign = the_campaign(session)
    receive(session, rows_of(session, campaign)["NONE"].link, now=partners["now"])
    session.commit()
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert len(requests_in(handler)) == 2
    handler.messages.clear()

    clock.set(partners["due"] - 3 * DAY + timedelta(minutes=1))
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert runner.invoke(args=["run-due"]).exit_code == 0  # never twice for one offset

    mails = [
        (e.rcpt_tos, message_from_bytes(e.content, policy=policy.default)) for e in handler.messages
    ]
    reminders = [(to, m) for to, m in mails if "Reminder" in m["Subject"]]
    assert [to for to, _ in reminders] == [["edi@soon.example"]]
    reminder = reminders[0][1]
    assert "Reminder: Acme Corp needs Soon GmbH's new AS2" in reminder["Subject"]
    text = reminder.get_body(preferencelist=("plain",)).get_content()
    assert "in 3 days" in text


def page_fields(partners: dict[str, Any], **changes: str) -> dict[str, str]:
    fields = {
        "request-identity": str(partners["identity"].id),
        "request-expiring_before": partners["before"].strftime("%Y-%m-%d"),
        "request-date": partners["due"].strftime("%Y-%m-%d"),
        "request-time": partners["due"].strftime("%H:%M"),
        "request-timezone": "UTC",
        "request-message": "Questions? Write to edi@acme.example",
    }
    fields.update({f"request-{key}": value for key, value in changes.items()})
    return fields


def test_an_operator_asks_on_the_page_and_sees_the_board(
    operator_client, session, partners
) -> None:
    listing = operator_client.get("/campaigns").get_data(as_text=True)
    assert "Ask partners for new certificates" in listing

    response = operator_client.post("/campaigns/requests", data=page_fields(partners))

    assert response.status_code == 302
    campaign = the_campaign(session)
    assert response.location.endswith(f"/campaigns/{campaign.id}")
    assert campaign.expiring_before == datetime.combine(
        partners["before"].date(), datetime.min.time(), tzinfo=UTC
    )
    text = operator_client.get(response.location).get_data(as_text=True)
    assert "each partner's new certificate" in text
    assert "Sent: 3" in text
    assert "Acknowledged" not in text  # nothing of ours to install
    assert "Uploaded: 0" in text
    listing = operator_client.get("/campaigns").get_data(as_text=True)
    assert "Partners&#39; certificates" in listing


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"date": "2001-01-01"}, "at least a day"),
        ({"date": ""}, "Give the date and time of the switch."),
        ({"expiring_before": "2001-01-01"}, "expiry limit is in the past"),
        ({"expiring_before": "not a date"}, "Enter a date as year-month-day"),
    ],
)
def test_a_refused_request_is_422_with_the_reason(
    operator_client, session, partners, changes, error
) -> None:
    response = operator_client.post("/campaigns/requests", data=page_fields(partners, **changes))

    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_at_risk_on_the_dashboard_then_revoke_all_at_risk(
    app, operator_client, runner, session, client, clock, partners
) -> None:
    clock.set(partners["now"])
    assert request_cli(runner, partners).exit_code == 0
    campaign = the_campaign(session)
    rows = rows_of(session, campaign)
    receive(session, rows["NONE"].link, now=partners["now"])
    session.commit()
    assert "partners at risk" not in operator_client.get("/").get_data(as_text=True)

    clock.set(partners["due"] - 2 * DAY)
    overview = operator_client.get("/").get_data(as_text=True)
    assert re.search(
        rf"Campaign {campaign.id} \(ACME, certificates due .*<strong>2</strong> partners at risk",
        overview,
    )

    response = operator_client.post(
        f"/campaigns/{campaign.id}/revoke-at-risk", follow_redirects=True
    )

    assert "Revoked the links of 2 partners at risk." in response.get_data(as_text=True)
    for key in ("SOON", "SILENT"):
        session.refresh(rows[key].link)
        assert rows[key].link.revoked_at is not None
    session.refresh(rows["NONE"].link)
    assert rows["NONE"].link.revoked_at is None  # it uploaded: not at risk
    token = link_signer_token(app, rows["SOON"].link_id)
    assert client.get(f"/s/{token}").status_code == 410
    summary = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "campaign.revoked_at_risk")
    ).one()
    assert summary.details["skipped"] == 0
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "link.revoked")
        )
        == 2
    )


def link_signer_token(app, link_id: str) -> str:
    with app.app_context():
        return link_signer().sign(link_id)
