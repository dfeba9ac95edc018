"""Control characters are stripped and bidi controls refused in every text field (issue 13).

A partner's contact name with U+202E could reorder what an approver reads; ESC could drive
a terminal that prints it; CR/LF could split a line. Checked on every form class and, end to
end, on the partner's link page, the staff pages, the database and the command line.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField, TextAreaField

import portal.web.auth.forms
import portal.web.partner.forms
import portal.web.staff.forms  # noqa: F401  (every form class is a subclass below)
from portal.domain.text import BIDI_CONTROLS, clean_text, strip_controls
from portal.extensions import link_signer
from portal.models import Acknowledgement, ChangeWindow, Partner
from portal.services import links
from portal.timeutil import utcnow
from portal.web.forms import PortalForm
from tests import factories

RLO = "\u202e"
HOSTILE = f"Eve{RLO}fdp.exe\x1b[31m\r\nsecond line\x07\x85"


def _all_form_classes() -> list[type[PortalForm]]:
    found: list[type[PortalForm]] = []
    todo = [PortalForm]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if not sub.__name__.startswith("_"):
                found.append(sub)
    return sorted(set(found), key=lambda cls: cls.__qualname__)


FORMS = _all_form_classes()


def test_every_form_is_found() -> None:
    names = {cls.__name__ for cls in FORMS}
    assert {"UploadForm", "WindowForm", "AcknowledgeForm", "PartnerForm", "LoginForm"} <= names


def _make(form_class: type[PortalForm], data: dict[str, str]) -> PortalForm:
    """FORM_CLASS on DATA, with the choices a view would fill in left empty."""
    form = form_class(formdata=MultiDict(data), meta={"csrf": False})
    for field in form:
        if getattr(field, "choices", ()) is None:
            field.choices = []
    return form


def _text_fields(form: PortalForm) -> list:
    return [f for f in form if isinstance(f, StringField) and not isinstance(f, PasswordField)]


@pytest.mark.parametrize("form_class", FORMS, ids=lambda cls: cls.__name__)
def test_escape_and_line_breaks_are_stripped_from_every_text_field(
    app: Flask, form_class: type[PortalForm]
) -> None:
    value = "A\x1b[1mB\r\nC\tD\x7f\x9bE"
    with app.test_request_context(method="POST"):
        probe = form_class(meta={"csrf": False})
        names = [field.name for field in _text_fields(probe)]
        form = _make(form_class, dict.fromkeys(names, value))
        form.validate()
        for field in _text_fields(form):
            if field.name == "csrf_token" or not isinstance(field.data, str):
                continue
            assert "\x1b" not in field.data, field.name
            assert "\x7f" not in field.data, field.name
            assert "\x9b" not in field.data, field.name
            if isinstance(field, TextAreaField):
                assert "\r\nC\tD" in field.data, field.name
            elif field.data:
                assert "\r" not in field.data, field.name
                assert "\n" not in field.data, field.name


@pytest.mark.parametrize("form_class", FORMS, ids=lambda cls: cls.__name__)
def test_a_bidi_override_in_any_text_field_is_refused_and_not_echoed(
    app: Flask, form_class: type[PortalForm]
) -> None:
    with app.test_request_context(method="POST"):
        probe = form_class(meta={"csrf": False})
        for name in [f.name for f in _text_fields(probe) if f.name != "csrf_token"]:
            form = _make(form_class, {name: f"abc{RLO}def"})
            assert not form.validate()
            field = form[name]
            assert any("text-direction" in error for error in field.errors), name
            assert RLO not in (field.data or "")


def test_passwords_are_left_as_typed(app: Flask) -> None:
    from portal.web.auth.forms import LoginForm

    with app.test_request_context(method="POST"):
        form = LoginForm(
            formdata=MultiDict({"email": "a@example.com", "password": "pass\x1bword"}),
            meta={"csrf": False},
        )
        form.validate()
        assert form.password.data == "pass\x1bword"


@pytest.fixture
def token(session) -> str:
    partner = factories.partner(session)
    _link, made = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=1), max_uploads=3, now=utcnow(),
    )  # fmt: skip
    return made


def test_a_contact_name_with_u202e_reaches_neither_the_page_nor_the_database(
    client, session, token: str
) -> None:
    moment = utcnow() + timedelta(days=5)
    response = client.post(
        f"/s/{token}/window",
        data={
            "date": moment.strftime("%Y-%m-%d"),
            "time": "10:00",
            "timezone": "UTC",
            "contact_name": f"Eve {RLO}gnp.exe",
        },
    )
    assert response.status_code == 422
    assert RLO not in response.get_data(as_text=True)
    assert "text-direction" in response.get_data(as_text=True)
    assert session.scalars(select(ChangeWindow)).all() == []
    response = client.post(f"/s/{token}/acknowledge", data={"contact_name": f"Eve {RLO}x"})
    assert response.status_code == 422
    assert RLO not in response.get_data(as_text=True)
    assert session.scalars(select(Acknowledgement)).all() == []


def test_escape_and_crlf_in_a_contact_name_are_stripped_before_storing(
    client, session, token: str
) -> None:
    response = client.post(f"/s/{token}/acknowledge", data={"contact_name": "Eve\x1b[2J\r\nAdmin"})
    assert response.status_code == 302
    stored = session.scalars(select(Acknowledgement)).one()
    assert stored.contact_name == "Eve[2J Admin"


def test_a_partner_name_with_controls_is_stored_clean_and_bidi_refused(
    admin_client, session
) -> None:
    identity = factories.identity(session)
    data = {
        "name": "Globex\x1b[31m\r\nInc",
        "as2_id": "HYGIENE1",
        "identity_id": str(identity.id),
        "contact_emails": "edi@globex.example",
        "timezone": "UTC",
    }
    assert admin_client.post("/partners/new", data=data).status_code == 302
    partner = session.scalars(select(Partner).where(Partner.as2_id == "HYGIENE1")).one()
    assert partner.name == "Globex[31m Inc"
    refused = admin_client.post(
        "/partners/new", data={**data, "name": f"Globex{RLO}cni", "as2_id": "HYGIENE2"}
    )
    assert refused.status_code == 422
    assert RLO not in refused.get_data(as_text=True)
    assert session.scalars(select(Partner).where(Partner.as2_id == "HYGIENE2")).all() == []


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_clean_text_refuses_each_bidi_control(char: str) -> None:
    with pytest.raises(ValueError, match="text-direction"):
        clean_text(f"a{char}b")


def test_strip_controls_keeps_ordinary_text() -> None:
    text = "Zürich, 東京, القاهرة, naïve café\tok"
    assert strip_controls(text, multiline=True) == text
    assert strip_controls(HOSTILE) == f"Eve{RLO}fdp.exe[31m second line"


def test_the_command_line_refuses_bidi_and_strips_controls_in_stored_names(runner, session) -> None:
    refused = runner.invoke(
        args=["identity", "add", "--name", f"Acme{RLO}emca", "--as2-id", "HYGIENECLI1"]
    )
    assert refused.exit_code == 2
    assert "text-direction" in refused.output
    stored = runner.invoke(
        args=["identity", "add", "--name", "Acme\x1b[31m\nCorp", "--as2-id", "HYGIENECLI2"]
    )
    assert stored.exit_code == 0, stored.output
    from portal.models import Identity

    identity = session.scalars(select(Identity).where(Identity.as2_id == "HYGIENECLI2")).one()
    assert identity.name == "Acme[31m Corp"
