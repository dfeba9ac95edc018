"""Change windows: the partner proposes one (stored in UTC), staff accept it or propose
another which the partner accepts, and both download the .ics invitation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import ChangeWindow, OutboxMessage
from portal.services import windows
from portal.timeutil import format_in_zone, utcnow
from tests import factories
from tests.linkhelpers import NEXT_YEAR, SCRIPT, audit_events, browser_form, share, windows_of
from tests.schedulehelpers import BERLIN, actor, events, minute, plain, text_of

# ---------------------------------------------------------------------------
# The partner proposes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "local_time", "utc"),
    [
        (
            "America/Chicago",
            date(NEXT_YEAR, 1, 15),
            "09:30",
            datetime(NEXT_YEAR, 1, 15, 15, 30, tzinfo=UTC),
        ),
        (
            "America/Chicago",
            date(NEXT_YEAR, 7, 15),
            "09:30",
            datetime(NEXT_YEAR, 7, 15, 14, 30, tzinfo=UTC),
        ),
        (
            "Asia/Kolkata",
            date(NEXT_YEAR, 1, 15),
            "02:00",
            datetime(NEXT_YEAR, 1, 14, 20, 30, tzinfo=UTC),
        ),
    ],
)
def test_partner_proposes_a_change_window_stored_in_utc(
    client, session, zone: str, day: date, local_time: str, utc: datetime
) -> None:
    shared = share(session)
    data = browser_form(client.get(shared.page).get_data(as_text=True), f"{shared.page}/window")
    data.update(
        date=day.isoformat(),
        time=local_time,
        timezone=zone,
        contact_name="Grace",
        contact_email="grace@globex.example",
    )

    response = client.post(f"{shared.page}/window", data=data)

    assert response.status_code == 302
    assert response.location.endswith(f"{shared.page}#window")
    (window,) = windows_of(session, shared.partner)
    assert window.starts_at == utc
    assert window.timezone == zone
    assert (window.proposed_by, window.status) == ("partner", "proposed")
    assert (window.contact_name, window.contact_email) == ("Grace", "grace@globex.example")
    assert len(audit_events(session, "window.proposed", shared.link)) == 1
    page = client.get(shared.page).get_data(as_text=True)
    # Shown in a local zone (the proposal's or the partner's) with UTC beside it.
    shown = [format_in_zone(utc, z) for z in (zone, shared.partner.timezone)]
    assert any(text in page for text in shown), shown
    assert all(f"{utc:%H:%M} UTC" in text for text in shown)


def test_a_new_proposal_supersedes_the_previous_one(client, session) -> None:
    shared = share(session)
    for hour in ("10:00", "11:00"):
        response = client.post(
            f"{shared.page}/window",
            data={"date": f"{NEXT_YEAR}-02-01", "time": hour, "timezone": "UTC"},
        )
        assert response.status_code == 302
    assert [w.status for w in windows_of(session, shared.partner)] == ["superseded", "proposed"]
    page = client.get(shared.page).get_data(as_text=True)
    assert "11:00 UTC" in page
    assert "10:00 UTC" not in page


BAD_WINDOWS = [
    ({"date": "2000-01-01", "time": "10:00"}, "Propose a time in the future"),
    ({"date": "YESTERDAY", "time": "10:00"}, "Enter a date as year-month-day"),
    ({"date": f"{NEXT_YEAR}-01-01", "time": ""}, "Enter a time as hours:minutes"),
    ({"date": f"{NEXT_YEAR}-01-01"}, "Give a date, a time and a time zone"),
    ({}, "Give a date and a time"),
    (
        {"date": f"{NEXT_YEAR}-01-01", "time": "10:00", "timezone": "Mars/Olympus"},
        "We do not know that time zone",
    ),
    ({"date": f"{NEXT_YEAR}-01-01", "time": "10:00", "contact_email": SCRIPT}, "an email address"),
]


def test_a_bad_window_proposal_is_422_and_stores_nothing(client, session) -> None:
    shared = share(session)

    for fields, says in BAD_WINDOWS:
        response = client.post(f"{shared.page}/window", data={"timezone": "UTC", **fields})

        assert response.status_code == 422, fields
        page = response.get_data(as_text=True)
        assert says in page, fields
        assert SCRIPT not in page
    assert windows_of(session, shared.partner) == []
    assert audit_events(session, "window.proposed", partner=shared.partner) == []


# ---------------------------------------------------------------------------
# Agreeing on a window
# ---------------------------------------------------------------------------


@pytest.fixture
def window_partner(session: Session) -> dict[str, Any]:
    partner = factories.partner(session, timezone="Europe/Berlin")
    shared = share(session, partner, max_uploads=5)
    return {"partner": partner, "link": shared.link, "token": shared.token}


def calendar_event(response: Any) -> Any:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.get_data())
    (event,) = calendar.walk("VEVENT")
    return event


def check_invitation(event: Any, window: ChangeWindow, status: str) -> None:
    assert event.decoded("dtstart") == window.starts_at
    assert event.decoded("dtstart").utcoffset() == timedelta(0)
    description = str(event["description"])
    local = window.starts_at.astimezone(BERLIN)
    assert f"{window.starts_at:%Y-%m-%d %H:%M} UTC" in description
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()}" in description
    assert "Europe/Berlin" in description
    assert str(event["status"]) == status


def test_staff_propose_and_the_partner_accepts(
    session, operator_client, client, window_partner
) -> None:
    partner, token = window_partner["partner"], window_partner["token"]
    day = (utcnow() + timedelta(days=10)).date()
    proposed = operator_client.post(
        f"/partners/{partner.id}/windows",
        data={
            "window-when": "chosen",
            "window-date": day.isoformat(),
            "window-time": "14:00",
            "window-timezone": "Europe/Berlin",
        },
    )
    assert proposed.status_code == 302, text_of(proposed)
    (window,) = windows_of(session, partner)
    assert (window.status, window.proposed_by, window.timezone) == (
        "proposed",
        "staff",
        "Europe/Berlin",
    )
    assert window.starts_at == datetime.combine(day, time(14, 0), tzinfo=BERLIN)
    assert session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.dedupe_key == f"window-proposed:{window.id}")
    )

    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    text = text_of(page)
    assert f"We propose: {format_in_zone(window.starts_at, 'Europe/Berlin')}" in plain(page)
    assert f'action="/s/{token}/window/{window.id}/accept"' in text
    assert "Accept this time" in text

    # The side that proposed cannot accept its own proposal.
    own = operator_client.post(
        f"/partners/{partner.id}/windows/{window.id}/accept", follow_redirects=True
    )
    assert "The other side accepts a proposal, not the side that made it." in text_of(own)
    assert window.status == "proposed"

    check_invitation(calendar_event(client.get(f"/s/{token}/window.ics")), window, "TENTATIVE")

    accepted = client.post(f"/s/{token}/window/{window.id}/accept")
    assert accepted.status_code == 302
    assert window.status == "accepted"
    assert events(session, "window.accepted", window_id=window.id)
    text = plain(client.get(f"/s/{token}"))
    assert f"Agreed: {format_in_zone(window.starts_at, 'Europe/Berlin')}" in text
    assert "Accept this time" not in text

    for response in (
        client.get(f"/s/{token}/window.ics"),
        operator_client.get(f"/partners/{partner.id}/window.ics"),
    ):
        check_invitation(calendar_event(response), window, "CONFIRMED")


def test_partner_proposes_and_staff_accept(
    session, operator_client, client, window_partner
) -> None:
    partner, link, token = (window_partner[k] for k in ("partner", "link", "token"))
    window = windows.propose_window(
        session,
        factories.ACTOR,
        link,
        starts_at=minute(utcnow() + timedelta(days=6)),
        timezone="Europe/Berlin",
        contact_name="Grace",
        contact_email="grace@globex.example",
        now=utcnow(),
    )
    check_invitation(
        calendar_event(operator_client.get(f"/partners/{partner.id}/window.ics")),
        window,
        "TENTATIVE",
    )

    own = client.post(f"/s/{token}/window/{window.id}/accept")
    assert own.status_code == 409
    assert "The other side accepts a proposal, not the side that made it." in text_of(own)
    assert window.status == "proposed"

    staff_page = text_of(operator_client.get(f"/partners/{partner.id}"))
    assert "Accept the partner's time" in staff_page
    accepted = operator_client.post(f"/partners/{partner.id}/windows/{window.id}/accept")
    assert accepted.status_code == 302
    assert window.status == "accepted"
    assert "Agreed" in text_of(client.get(f"/s/{token}"))
    check_invitation(calendar_event(client.get(f"/s/{token}/window.ics")), window, "CONFIRMED")


def test_no_window_no_calendar(session, operator_client, client, window_partner) -> None:
    partner, token = window_partner["partner"], window_partner["token"]
    assert client.get(f"/s/{token}/window.ics").status_code == 404
    assert operator_client.get(f"/partners/{partner.id}/window.ics").status_code == 404


def test_a_new_proposal_after_an_agreement_reaches_the_partner(
    session, operator, client, window_partner
) -> None:
    partner, link, token = (window_partner[k] for k in ("partner", "link", "token"))
    now = utcnow()
    agreed = windows.propose_window(
        session, factories.ACTOR, link, starts_at=minute(now + timedelta(days=6)),
        timezone="Europe/Berlin", contact_name=None, contact_email=None, now=now,
    )  # fmt: skip
    windows.accept_window(session, actor(operator), agreed, by_partner=False, now=now)
    later = windows.propose_window_as_staff(
        session, actor(operator), partner, starts_at=minute(now + timedelta(days=9)),
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    text = plain(client.get(f"/s/{token}"))
    assert f"We propose: {format_in_zone(later.starts_at, 'Europe/Berlin')}" in text
