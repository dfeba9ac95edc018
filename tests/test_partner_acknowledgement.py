"""The partner confirms on their link page that they installed our certificate."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from portal.extensions import keyring
from portal.models import Acknowledgement
from tests import factories
from tests.linkhelpers import (
    NEXT_YEAR,
    audit_events,
    browser_form,
    share,
)


def test_partner_confirms_they_installed_our_certificate(client, session) -> None:
    shared = share(session)
    ours = factories.identity_certificate(session, keyring(), shared.partner.identity)
    page = client.get(shared.page).get_data(as_text=True)
    assert "You confirmed on" not in page
    data = browser_form(page, f"{shared.page}/acknowledge")
    data.update(installed_on=f"{NEXT_YEAR}-01-02", contact_name="Grace")

    response = client.post(f"{shared.page}/acknowledge", data=data)

    assert response.status_code == 302
    assert response.location.endswith(f"{shared.page}?acknowledged=1#installed")
    (ack,) = session.scalars(
        select(Acknowledgement).where(Acknowledgement.partner_id == shared.partner.id)
    ).all()
    assert ack.certificate_id == ours.id
    assert ack.installed_on == date(NEXT_YEAR, 1, 2)
    assert ack.contact_name == "Grace"
    assert ack.link_id == shared.link.id
    (event,) = audit_events(session, "link.acknowledged", shared.link)
    assert event.details["acknowledgement_id"] == ack.id
    page = client.get(response.location).get_data(as_text=True)
    assert "Thank you for confirming" in page
    assert "You confirmed on" in page
    assert f"(installed {NEXT_YEAR}-01-02)" in page


def test_a_bad_acknowledgement_is_422(client, session) -> None:
    shared = share(session)
    # A certificate of ours to confirm: without one the page asks for no confirmation.
    factories.identity_certificate(session, keyring(), shared.partner.identity)
    session.commit()
    response = client.post(f"{shared.page}/acknowledge", data={"installed_on": "someday"})
    assert response.status_code == 422
    assert "Enter a date as year-month-day" in response.get_data(as_text=True)
    assert (
        session.scalars(
            select(Acknowledgement).where(Acknowledgement.partner_id == shared.partner.id)
        ).all()
        == []
    )
