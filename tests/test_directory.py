"""Identities and partners through the staff pages: create, edit, view, list, bad input."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Identity, Partner
from portal.web.forms import timezone_choices
from tests import factories
from tests.conftest import reconfigure


def identity_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Acme Main",
        "as2_id": "ACMEMAIN",
        "environment": "production",
        "organisation": "Acme Corp",
        "contact_email": "edi@acme.example",
    }
    data.update(overrides)
    return data


def partner_form(owner_id: int, **overrides: str) -> dict[str, str]:
    data = {
        "name": "Globex",
        "as2_id": "GLOBEXAS2",
        "identity_id": str(owner_id),
        "contact_emails": "edi@globex.example\nops@globex.example",
        "timezone": "Europe/Berlin",
    }
    data.update(overrides)
    return data


def test_create_identity_then_view_it(operator_client, session) -> None:
    response = operator_client.post("/identities/new", data=identity_form())
    assert response.status_code == 302
    identity = session.scalar(select(Identity).where(Identity.as2_id == "ACMEMAIN"))
    assert identity is not None
    assert response.headers["Location"] == f"/identities/{identity.id}"
    page = operator_client.get(f"/identities/{identity.id}").get_data(as_text=True)
    assert "ACMEMAIN" in page
    assert "Created identity Acme Main" in page  # its history


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"name": ""}, "Please fill in this field"),
        ({"as2_id": ""}, "Please fill in this field"),
        ({"as2_id": "HAS SPACE"}, "without spaces"),
        ({"as2_id": "X" * 129}, "128"),
        ({"environment": "staging"}, "Choose one of the options offered"),
        ({"contact_email": "not-an-email"}, "Enter an email address"),
    ],
)
def test_identity_bad_input_rerenders_with_field_errors(
    operator_client, session, overrides: dict[str, str], field_error: str
) -> None:
    response = operator_client.post("/identities/new", data=identity_form(**overrides))
    assert response.status_code == 422
    assert field_error in response.get_data(as_text=True)
    assert session.scalar(select(Identity)) is None


def test_duplicate_as2_id_is_a_field_error(operator_client, session) -> None:
    factories.identity(session, as2_id="ACMEMAIN")
    response = operator_client.post("/identities/new", data=identity_form())
    assert response.status_code == 422
    assert "already used by identity" in response.get_data(as_text=True)


def test_same_as2_id_is_allowed_in_another_environment(operator_client, session) -> None:
    factories.identity(session, as2_id="ACMEMAIN", environment="test")
    response = operator_client.post("/identities/new", data=identity_form())
    assert response.status_code == 302


def test_html_in_names_is_shown_as_text(operator_client, session) -> None:
    response = operator_client.post(
        "/identities/new", data=identity_form(name="<script>alert(1)</script>")
    )
    identity = session.scalar(select(Identity))
    page = operator_client.get(f"/identities/{identity.id}").get_data(as_text=True)
    assert response.status_code == 302
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_editing_identity_environment_moves_its_partners(operator_client, session) -> None:
    partner = factories.partner(session)
    identity = partner.identity
    response = operator_client.post(
        f"/identities/{identity.id}/edit",
        data=identity_form(name=identity.name, as2_id=identity.as2_id, environment="test"),
    )
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Partner, partner.id).environment == "test"
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "identity.updated")).one()
    assert event.details["environment"] == ["production", "test"]


def test_edit_form_is_prefilled(operator_client, session) -> None:
    identity = factories.identity(session, name="Prefilled Station")
    page = operator_client.get(f"/identities/{identity.id}/edit").get_data(as_text=True)
    assert 'value="Prefilled Station"' in page


def test_unknown_identity_is_404(viewer_client) -> None:
    assert viewer_client.get("/identities/999999").status_code == 404
    assert viewer_client.get("/partners/999999").status_code == 404


def test_create_partner(operator_client, session) -> None:
    identity = factories.identity(session)
    response = operator_client.post("/partners/new", data=partner_form(identity.id))
    assert response.status_code == 302
    partner = session.scalar(select(Partner).where(Partner.as2_id == "GLOBEXAS2"))
    assert partner.environment == identity.environment
    assert partner.contact_emails == ["edi@globex.example", "ops@globex.example"]
    page = operator_client.get(f"/partners/{partner.id}").get_data(as_text=True)
    assert "Europe/Berlin" in page
    assert "ops@globex.example" in page


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"name": ""}, "Please fill in this field"),
        ({"contact_emails": ""}, "Please fill in this field"),
        ({"contact_emails": "ok@example.com, nope"}, "not a valid email"),
        ({"timezone": "Mars/Olympus"}, "Choose one of the options offered"),
        ({"identity_id": "999999"}, "Choose one of the options offered"),
        ({"identity_id": "abc"}, "Choose one of the options offered"),
        ({"as2_id": 'QUO"TE'}, "without spaces, quotes"),
    ],
)
def test_partner_bad_input(operator_client, session, overrides, field_error) -> None:
    identity = factories.identity(session)
    response = operator_client.post("/partners/new", data=partner_form(identity.id, **overrides))
    assert response.status_code == 422
    assert field_error in response.get_data(as_text=True)
    assert session.scalar(select(Partner)) is None


def test_partner_duplicate_as2_id_in_environment(operator_client, session) -> None:
    existing = factories.partner(session, as2_id="GLOBEXAS2")
    response = operator_client.post("/partners/new", data=partner_form(existing.identity_id))
    assert response.status_code == 422
    assert "already used by partner" in response.get_data(as_text=True)


def test_partner_edit_changes_contacts_and_records_them(operator_client, session) -> None:
    partner = factories.partner(session)
    response = operator_client.post(
        f"/partners/{partner.id}/edit",
        data=partner_form(
            partner.identity_id,
            name=partner.name,
            as2_id=partner.as2_id,
            contact_emails="new@globex.example",
        ),
    )
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Partner, partner.id).contact_emails == ["new@globex.example"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "partner.updated")).one()
    assert "contact_emails" in event.details


def test_partner_new_without_identities_sends_to_identity_form(operator_client) -> None:
    response = operator_client.get("/partners/new")
    assert response.status_code == 302
    assert response.headers["Location"] == "/identities/new"


def test_lists_paginate_and_search(app, viewer_client, session) -> None:
    reconfigure(app, PAGE_SIZE=2)
    identity = factories.identity(session, name="Zeta Station", as2_id="ZETA")
    for name in ("Alpha", "Bravo", "Charlie"):
        factories.partner(session, identity, name=name, as2_id=f"{name.upper()}AS2")
    first = viewer_client.get("/partners").get_data(as_text=True)
    assert "Alpha" in first
    assert "Bravo" in first
    assert "Charlie" not in first
    assert "3 partners" in first
    second_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = viewer_client.get(second_url).get_data(as_text=True)
    assert "Charlie" in second
    assert "Alpha" not in second
    assert "Charlie" in viewer_client.get("/partners?q=charlieas2").get_data(as_text=True)
    assert "No partner matches" in viewer_client.get("/partners?q=nothing").get_data(as_text=True)
    assert "Zeta Station" in viewer_client.get("/identities?q=zet").get_data(as_text=True)
    # LIKE wildcards are taken literally.
    assert "No identity matches" in viewer_client.get("/identities?q=%25").get_data(as_text=True)
    # Odd page numbers (of the numbered pages before keyset pages) never fail.
    assert viewer_client.get("/partners?page=-3").status_code == 200
    assert viewer_client.get("/partners?page=abc").status_code == 200
    assert viewer_client.get("/partners?page=99").status_code == 200


def test_empty_states(viewer_client) -> None:
    assert "No identities yet" in viewer_client.get("/identities").get_data(as_text=True)
    assert "No partners yet" in viewer_client.get("/partners").get_data(as_text=True)
    assert "No identities yet" in viewer_client.get("/").get_data(as_text=True)


def test_viewer_sees_no_edit_buttons(viewer_client, session) -> None:
    partner = factories.partner(session)
    page = viewer_client.get(f"/partners/{partner.id}").get_data(as_text=True)
    assert f"/partners/{partner.id}/edit" not in page


def test_the_time_zone_list_is_built_once_and_offered_in_order(operator_client, session) -> None:
    assert timezone_choices() is timezone_choices()  # read from disk once per process
    zones = [zone for zone in sorted(available_timezones()) if "/" in zone or zone == "UTC"]
    assert list(timezone_choices()) == [(zone, zone) for zone in zones]

    factories.identity(session)  # a partner form needs one of our identities
    page = operator_client.get("/partners/new").get_data(as_text=True)
    select = page[page.index('name="timezone"') :]
    select = select[: select.index("</select>")]
    offered = re.findall(r'<option[^>]*value="([^"]*)"', select)
    assert offered == zones
