"""No library message reaches a person: every form's refusals are the portal's words (issue 14).

WTForms writes "Not a valid date value.", "Invalid Choice: could not coerce." and the like;
portal.web.forms rewords each of them, in the page's language. Checked on every form class
of portal.web with wrong values for each kind of field, and on the partner page in English
and German.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import timedelta
from pathlib import Path

import pytest
import wtforms
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import refresh
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    IntegerField,
    SelectFieldBase,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.fields.core import UnboundField

import portal.web
from portal.domain.text import BIDI_REFUSAL
from portal.web.forms import BIDI_REFUSAL as WEB_BIDI_REFUSAL
from portal.web.forms import LIBRARY_MESSAGES
from tests.linkhelpers import share
from tests.test_languages import GERMAN, visible_text

WTFORMS_LOCALE = Path(wtforms.__file__).parent / "locale"


def _library_messages() -> set[str]:
    """Every message WTForms writes for people: the msgids of its own catalog template."""
    with (WTFORMS_LOCALE / "wtforms.pot").open("rb") as pot:
        ids = set()
        for message in read_po(pot):
            ids.update(message.id if isinstance(message.id, tuple) else (message.id,))
    return {i for i in ids if i}


LIBRARY = _library_messages()


def _pattern(message: str) -> re.Pattern[str]:
    """A library message with its placeholders (%(min)d, %s, {extensions}) matching anything."""
    parts = re.split(r"%\(\w+\)[ds]|%s|\{\w+\}", message)
    return re.compile(".*".join(re.escape(part) for part in parts), re.IGNORECASE)


LIBRARY_PATTERNS = [_pattern(m) for m in LIBRARY]
# A few words every library message has that the portal's never do.
LIBRARY_WORDS = ("Not a valid date", "Not a valid time", "Field must", "Field cannot", "coerce")


def _german_library_messages() -> set[str]:
    """WTForms' own German wording of its messages (Flask-WTF would show these)."""
    with (WTFORMS_LOCALE / "de" / "LC_MESSAGES" / "wtforms.po").open("rb") as po:
        found = set()
        for message in read_po(po):
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            found.update(s for s in strings if s)
    return found


GERMAN_LIBRARY_PATTERNS = [_pattern(m) for m in _german_library_messages()]


def _library_text(text: str) -> list[str]:
    """The library messages (English or WTForms' German) found in TEXT."""
    found = [p.pattern for p in LIBRARY_PATTERNS + GERMAN_LIBRARY_PATTERNS if p.search(text)]
    return found + [w for w in LIBRARY_WORDS if w in text]


def _has_fields(cls: type) -> bool:
    """Whether CLS declares fields (a base such as PortalForm or a bare ConfirmForm has none)."""
    return not cls.__name__.startswith("_") and any(
        isinstance(getattr(cls, name), UnboundField)
        for name in dir(cls)
        if not name.startswith("_")
    )


def _form_classes() -> list[type[FlaskForm]]:
    """Every form class defined in portal.web's modules."""
    for module in pkgutil.walk_packages(portal.web.__path__, "portal.web."):
        importlib.import_module(module.name)
    found: set[type[FlaskForm]] = set()
    todo: list[type] = [FlaskForm]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("portal.web.") and _has_fields(sub):
                found.add(sub)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


FORMS = _form_classes()


def _wrong_values(form: FlaskForm, round_: int) -> MultiDict:
    """Round 0 leaves every field empty; round 1 fills each with a wrong value for its kind;
    round 2 with an over-long or too-short text."""
    data = MultiDict()
    for field in form:
        if field.name == "csrf_token" or round_ == 0:
            continue
        if isinstance(field, DateTimeField):
            data.add(field.name, "2027-02-30 25:61")
        elif isinstance(field, DateField):
            data.add(field.name, "2027-13-45")
        elif isinstance(field, TimeField):
            data.add(field.name, "25:99")
        elif isinstance(field, IntegerField | DecimalField | FloatField):
            data.add(field.name, "many" if round_ == 1 else "-99999999")
        elif isinstance(field, SelectMultipleField):
            data.add(field.name, "no-such-choice")
            data.add(field.name, "another")
        elif isinstance(field, SelectFieldBase):
            data.add(field.name, "no-such-choice")
        elif isinstance(field, BooleanField):
            data.add(field.name, "y")
        elif isinstance(field, StringField):
            data.add(field.name, "not an email address " * 5000 if round_ == 1 else "x")
    return data


def _errors(app: Flask, form_class: type[FlaskForm], headers: dict[str, str]) -> list[str]:
    """Every message FORM_CLASS gives for the wrong values of each round, in order."""
    messages: list[str] = []
    for round_ in range(3):
        with app.test_request_context("/s/x/window", method="POST", headers=headers):
            refresh()  # as before every request: the locale is chosen afresh
            probe = form_class(meta={"csrf": False})
            form = form_class(formdata=_wrong_values(probe, round_), meta={"csrf": False})
            for field in form:
                if getattr(field, "choices", ()) is None:
                    field.choices = []
            form.validate()
            for field in form:
                messages += [str(error) for error in field.errors]
            messages += [str(error) for error in form.form_errors]
    return messages


def test_every_form_of_the_portal_is_walked() -> None:
    names = {cls.__name__ for cls in FORMS}
    assert {"UploadForm", "WindowForm", "PartnerForm", "LoginForm", "LinkForm"} <= names
    assert len(FORMS) > 20


def test_every_library_message_has_the_portals_wording() -> None:
    assert LIBRARY - set(LIBRARY_MESSAGES) == set()
    for library, mine in LIBRARY_MESSAGES.items():
        assert _library_text(str(mine)) == [], library


@pytest.mark.parametrize("form_class", FORMS, ids=lambda cls: cls.__name__)
def test_no_form_shows_a_library_message(app: Flask, form_class: type[FlaskForm]) -> None:
    english = _errors(app, form_class, {"Accept-Language": "en"})
    assert english, "wrong values refused with no message at all"
    assert [(m, _library_text(m)) for m in english if _library_text(m)] == []
    if form_class.__module__ == "portal.web.partner.forms":
        german = _errors(app, form_class, GERMAN)
        assert [(m, _library_text(m)) for m in german if _library_text(m)] == []
        left = [de for de, en in zip(german, english, strict=True) if de == en]
        assert left == [], "English on the German page"


def test_the_bidi_refusal_is_the_domains_wording(app: Flask) -> None:
    with app.test_request_context("/"):
        assert str(WEB_BIDI_REFUSAL) == BIDI_REFUSAL


@pytest.mark.parametrize(
    ("headers", "date_message", "time_message"),
    [
        (
            {"Accept-Language": "en"},
            "Enter a date as year-month-day, for example 2027-03-01.",
            "Enter a time as hours:minutes, for example 14:30.",
        ),
        (
            GERMAN,
            "Geben Sie das Datum als Jahr-Monat-Tag ein, zum Beispiel 2027-03-01.",
            "Geben Sie die Uhrzeit als Stunden:Minuten ein, zum Beispiel 14:30.",
        ),
    ],
)
def test_the_partner_page_words_a_wrong_date_for_people(
    client, session, headers, date_message, time_message
) -> None:
    shared = share(session)
    session.commit()
    answer = client.post(
        f"{shared.page}/window",
        data={"date": "2027-13-45", "time": "25:99", "timezone": "UTC", "contact_email": "x@"},
        headers=headers,
    )
    assert answer.status_code == 422
    text = visible_text(answer.get_data(as_text=True))
    assert date_message in text
    assert time_message in text
    assert _library_text(text) == []


def test_a_partner_email_address_refusal_is_worded_for_people(client, session) -> None:
    shared = share(session)
    session.commit()
    moment = shared.link.expires_at - timedelta(hours=1)
    answer = client.post(
        f"{shared.page}/window",
        data={
            "date": moment.strftime("%Y-%m-%d"), "time": "10:00", "timezone": "UTC",
            "contact_email": "not-an-address",
        },
        headers=GERMAN,
    )  # fmt: skip
    assert answer.status_code == 422
    text = visible_text(answer.get_data(as_text=True))
    assert "Geben Sie eine E-Mail-Adresse wie name@example.com ein." in text
    assert _library_text(text) == []
