"""The .ics invitation travels with a campaign's emails: delivered over a real SMTP server on
loopback (aiosmtpd) as a text/calendar attachment beside the text and HTML alternative."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from icalendar import Calendar
from sqlalchemy import select

from portal.extensions import link_signer
from portal.models import OutboxMessage
from portal.services import campaigns, invitations, outbox
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure
from tests.linkhelpers import share
from tests.test_reminders import DAY, seed_rotation

BASE = "http://portal.test"


def parsed(envelope: Any) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))


def to(handler, address: str) -> list[EmailMessage]:
    return [parsed(e) for e in handler.messages if address in e.rcpt_tos]


def invitation_of(message: EmailMessage) -> Calendar:
    """The one text/calendar attachment of MESSAGE, parsed."""
    assert message.get_content_type() == "multipart/mixed"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == invitations.FILENAME
    return Calendar.from_ical(attachment.get_content())


def event_of(calendar: Calendar) -> Any:
    (event,) = calendar.walk("VEVENT")
    return event


def html_and_text(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def test_the_campaign_email_carries_the_switch_as_an_ics_with_a_stable_uid(
    app, runner, session, client, clock, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    at = (clock.now() + 20 * DAY).replace(second=0, microsecond=0)
    campaign, members = seed_rotation(session, start=clock.now(), at=at)
    berlin = members["BERLIN"]

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (message,) = to(handler, "edi@berlin.example")
    text, html = html_and_text(message)  # the alternative is still there, whole
    calendar = invitation_of(message)
    assert calendar["METHOD"] == "PUBLISH"
    event = event_of(calendar)
    assert event.decoded("DTSTART") == at
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)  # in UTC
    assert event["STATUS"] == "TENTATIVE"  # proposed: the partner has not accepted yet
    uid = str(event["UID"])
    assert uid == invitations.campaign_uid(campaign, berlin.partner)
    assert "Berlin Trading" in str(event["SUMMARY"])
    # Tokyo's invitation is its own.
    (tokyo,) = to(handler, "edi@tokyo.example")
    assert str(event_of(invitation_of(tokyo))["UID"]) != uid
    # The link in the email opens Berlin's page, whose .ics describes the same moment.
    (url,) = re.findall(rf"{BASE}/s/[A-Za-z0-9._-]+", text)
    assert f'href="{url}"' in html
    assert client.get(url.removeprefix(BASE)).status_code == 200

    # Sent again by staff: the same UID, so calendars update the entry instead of adding one.
    campaigns.resend(session, factories.ACTOR, campaign, berlin.partner_id, now=clock.now())
    session.commit()
    assert runner.invoke(args=["run-due"]).exit_code == 0
    again = to(handler, "edi@berlin.example")[-1]
    assert str(event_of(invitation_of(again))["UID"]) == uid
    assert event_of(invitation_of(again)).decoded("DTSTART") == at


def test_a_reminder_carries_the_same_invitation(app, runner, session, clock, smtp_server) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    start = clock.now().replace(microsecond=0)
    at = (start + 20 * DAY).replace(second=0)
    campaign, members = seed_rotation(session, start=start, at=at)
    berlin = members["BERLIN"]
    assert runner.invoke(args=["run-due"]).exit_code == 0  # the campaign's emails
    first = to(handler, "edi@berlin.example")[-1]

    clock.set(at - 3 * DAY)
    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    reminder = to(handler, "edi@berlin.example")[-1]
    assert str(reminder["Subject"]).strip().startswith("Reminder:")
    html_and_text(reminder)
    event = event_of(invitation_of(reminder))
    assert event.decoded("DTSTART") == at.astimezone(UTC)
    assert str(event["UID"]) == str(event_of(invitation_of(first))["UID"])
    assert str(event["UID"]) == invitations.campaign_uid(campaign, berlin.partner)
    stored = session.scalar(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == f"reminder:{berlin.id}:3")
    )
    assert stored is not None
    (attachment,) = outbox.attachments_of(stored)  # kept with the message, as text
    assert attachment.content.startswith("BEGIN:VCALENDAR")


def test_an_attachment_is_small_text_with_a_plain_name() -> None:
    import pytest

    outbox.Attachment("a.ics", "text/calendar; method=PUBLISH", "BEGIN:VCALENDAR")
    with pytest.raises(ValueError, match="text"):
        outbox.Attachment("a.bin", "application/octet-stream", "x")
    with pytest.raises(ValueError, match="at most"):
        outbox.Attachment("a.txt", "text/plain", "x" * (outbox.MAX_ATTACHMENT_CHARS + 1))
    for bad in ("../a.ics", 'a".ics', "a\r\n.ics", ""):
        with pytest.raises(ValueError, match="plain name"):
            outbox.Attachment(bad, "text/plain", "x")


def test_the_partner_pages_ics_updates_the_entry_the_campaign_email_made(
    app, session, client, clock
) -> None:
    at = (clock.now() + 20 * DAY).replace(second=0, microsecond=0)
    campaign, members = seed_rotation(session, start=clock.now(), at=at)
    berlin = members["BERLIN"]
    emailed = event_of(
        Calendar.from_ical(
            invitations.campaign_invitation(campaign, berlin.partner, stamp=clock.now()).content
        )
    )
    token = link_signer().sign(berlin.link_id)

    page = event_of(Calendar.from_ical(client.get(f"/s/{token}/window.ics").data))

    assert str(page["UID"]) == str(emailed["UID"])  # one calendar entry for the switch
    assert int(page["SEQUENCE"]) > int(emailed["SEQUENCE"])  # the page's version wins
    assert page.decoded("DTSTART") == at


def test_a_link_outside_any_campaign_keeps_its_windows_own_uid(session, client) -> None:
    shared = share(session)
    day = (utcnow() + 20 * DAY).date().isoformat()
    session.commit()
    proposed = client.post(
        f"{shared.page}/window", data={"date": day, "time": "10:00", "timezone": "UTC"}
    )
    assert proposed.status_code == 302

    event = event_of(Calendar.from_ical(client.get(f"{shared.page}/window.ics").data))

    assert str(event["UID"]).startswith("change-window-")
