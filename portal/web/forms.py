"""Helpers shared by the forms of every blueprint: the NUL check, choices, refusals."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField, TextAreaField

from portal.domain.text import BIDI_CONTROLS, BIDI_REFUSAL, has_bidi_controls, strip_controls
from portal.domain.vocab import Usage
from portal.services.errors import ServiceError
from portal.settings import settings

# How each usage reads in a select box, in the order offered; a test checks every
# usage has a label.
USAGE_LABELS: dict[Usage, str] = {
    Usage.BOTH: "Signing and encryption",
    Usage.SIGNING: "Signing only",
    Usage.ENCRYPTION: "Encryption only",
}
USAGE_CHOICES = [(usage.value, label) for usage, label in USAGE_LABELS.items()]


@cache
def timezone_choices() -> tuple[tuple[str, str], ...]:
    """Every IANA zone, sorted, for select boxes.

    Read from disk once per process; a tuple, as every form shares it and none may change it.
    """
    return tuple(
        (zone, zone) for zone in sorted(available_timezones()) if "/" in zone or zone == "UTC"
    )


def default_timezone() -> str:
    """The zone for new records when none is chosen (PORTAL_DEFAULT_TIMEZONE)."""
    return settings().default_timezone


class PortalForm(FlaskForm):
    """Base of the staff, partner and sign-in forms: text hygiene on every text field.

    A NUL character is refused on its field: nobody types one, databases cannot store one
    (PostgreSQL text) and C libraries stop at one (a PKCS#12 passphrase), so it is malformed
    input: 422, never 500. Other control characters are stripped from every text field (tab
    and line breaks survive in text areas, become a space elsewhere); bidirectional controls
    are refused with a message, and removed from the value shown back, so they reach neither
    the database nor a page (portal.domain.text says why). Passwords are left as typed.
    """

    def process(self, *args: Any, **kwargs: Any) -> None:
        """Bind the data, then clean every text field (before any page can show it)."""
        super().process(*args, **kwargs)
        self._bidi_refused = [field for field in self._text_fields() if _clean_field(field)]

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields' own validation, then the bidi refusals and the NUL check."""
        valid = bool(super().validate(extra_validators))
        refused = getattr(self, "_bidi_refused", [])
        for field in refused:
            field.errors = [*field.errors, BIDI_REFUSAL]
        for field in self:
            if any(isinstance(value, str) and "\x00" in value for value in field.raw_data or ()):
                field.errors = [*field.errors, "Remove the NUL character from this field."]
                valid = False
        return valid and not refused

    def _text_fields(self) -> list[Field]:
        return [
            field
            for field in self
            if isinstance(field, StringField)
            and not isinstance(field, PasswordField)
            and isinstance(field.data, str)
        ]


def _clean_field(field: Field) -> bool:
    """Strip control characters from FIELD's value; True if it held a bidi control (removed)."""
    text = strip_controls(field.data, multiline=isinstance(field, TextAreaField))
    refused = has_bidi_controls(text)
    field.data = "".join(char for char in text if char not in BIDI_CONTROLS) if refused else text
    return refused


def attach_error(form: FlaskForm, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def page_arg(value: str | None) -> int:
    """A page number from a query string; anything odd means page 1."""
    if value and value.isdigit():
        return max(1, min(int(value), 1_000_000))
    return 1
