"""Helpers shared by the forms of every blueprint: the NUL check, choices, refusals."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField, TextAreaField
from wtforms.meta import DefaultMeta

from portal.domain.text import BIDI_CONTROLS, has_bidi_controls, strip_controls
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


_CHOOSE = _l("Choose one of the options offered.")
_CHOOSE_SOME = _l("Choose only among the options offered.")
_REQUIRED = _l("Please fill in this field.")
_EXPIRED = _l("This form has expired. Please reload the page and try again.")
_CHECK = _l("This value is not in the expected form. Please check it.")

# The messages WTForms and Flask-WTF write for people (their gettext catalog's msgids, as the
# library's own .pot lists them), each with the portal's wording for it. Library wording
# ("Not a valid date value.", "Invalid Choice: could not coerce.") speaks of the program,
# not of what to type; these say what to do, and are in the page's language. The `%(...)`
# placeholders the library fills in afterwards are kept (unused ones are harmless).
LIBRARY_MESSAGES: dict[str, Any] = {
    "This field is required.": _REQUIRED,
    "Not a valid date value.": _l("Enter a date as year-month-day, for example 2027-03-01."),
    "Not a valid time value.": _l("Enter a time as hours:minutes, for example 14:30."),
    "Not a valid datetime value.": _l(
        "Enter a date and time as year-month-day hours:minutes, for example 2027-03-01 14:30."
    ),
    "Not a valid week value.": _l("Enter a week as year-W-week, for example 2027-W09."),
    "Not a valid integer value.": _l("Enter a whole number, for example 30."),
    "Not a valid decimal value.": _l("Enter a number, for example 2.5."),
    "Not a valid float value.": _l("Enter a number, for example 2.5."),
    "Invalid Choice: could not coerce.": _CHOOSE,
    "Not a valid choice.": _CHOOSE,
    "Choices cannot be None.": _CHOOSE,
    "Invalid choice(s): one or more data inputs could not be coerced.": _CHOOSE_SOME,
    "'%(value)s' is not a valid choice for this field.": _CHOOSE_SOME,
    "'%(value)s' are not valid choices for this field.": _CHOOSE_SOME,
    "Invalid email address.": _l("Enter an email address such as name@example.com."),
    "Field must be equal to %(other_name)s.": _l("The two entries differ."),
    "Field must be at least %(min)d character long.": _l("Use at least %(min)d characters."),
    "Field must be at least %(min)d characters long.": _l("Use at least %(min)d characters."),
    "Field cannot be longer than %(max)d character.": _l("Use at most %(max)d characters."),
    "Field cannot be longer than %(max)d characters.": _l("Use at most %(max)d characters."),
    "Field must be exactly %(max)d character long.": _l("Use exactly %(max)d characters."),
    "Field must be exactly %(max)d characters long.": _l("Use exactly %(max)d characters."),
    "Field must be between %(min)d and %(max)d characters long.": _l(
        "Use at least %(min)d and at most %(max)d characters."
    ),
    "Number must be at least %(min)s.": _l("Enter a number of at least %(min)s."),
    "Number must be at most %(max)s.": _l("Enter a number of at most %(max)s."),
    "Number must be between %(min)s and %(max)s.": _l("Enter a number from %(min)s to %(max)s."),
    "Invalid input.": _CHECK,
    "Invalid IP address.": _l("Enter an IP address, for example 192.0.2.10."),
    "Invalid Mac address.": _CHECK,
    "Invalid URL.": _l("Enter a full web address, for example https://example.com/."),
    "Invalid UUID.": _CHECK,
    "Invalid value, must be one of: %(values)s.": _l("Enter one of: %(values)s."),
    "Invalid value, can't be any of: %(values)s.": _l("This value is not allowed here."),
    "This field cannot be edited.": _l("This field cannot be changed."),
    "This field is disabled and cannot have a value.": _l("This field cannot be changed."),
    "Invalid field name '%s'.": _CHECK,
    "Invalid CSRF Token.": _EXPIRED,
    "CSRF token missing.": _EXPIRED,
    "CSRF failed.": _EXPIRED,
    "CSRF token expired.": _EXPIRED,
    # Flask-WTF's file validators.
    "File does not have an approved extension.": _l("Choose a file of one of the types named."),
    "File does not have an approved extension: {extensions}": _l(
        "Choose a file of one of the types named."
    ),
}


class _PortalMessages:
    """The gettext a form's fields use: library messages become the portal's, in the page's
    language; anything else (a label WTForms makes from a field's name) is left as it is."""

    def gettext(self, string: str) -> str:
        """The portal's wording of a library message."""
        mine = LIBRARY_MESSAGES.get(string)
        return string if mine is None else str(mine)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The portal's wording of a library message with a count (worded for any count)."""
        mine = LIBRARY_MESSAGES.get(singular if n == 1 else plural)
        if mine is None:
            return singular if n == 1 else plural
        return str(mine)


_MESSAGES = _PortalMessages()
NUL_REFUSAL = _l("Remove the NUL character from this field.")
# portal.domain.text.BIDI_REFUSAL, in the page's language (a test keeps the two the same).
BIDI_REFUSAL = _l(
    "Remove the invisible text-direction characters (such as U+202E) from this field."
)


class PortalForm(FlaskForm):
    """Base of the staff, partner and sign-in forms: text hygiene on every text field.

    A NUL character is refused on its field: nobody types one, databases cannot store one
    (PostgreSQL text) and C libraries stop at one (a PKCS#12 passphrase), so it is malformed
    input: 422, never 500. Other control characters are stripped from every text field (tab
    and line breaks survive in text areas, become a space elsewhere); bidirectional controls
    are refused with a message, and removed from the value shown back, so they reach neither
    the database nor a page (portal.domain.text says why). Passwords are left as typed.

    The fields' own messages (a date that is not one, a choice not offered) are the portal's,
    never the library's: Meta gives every field a gettext that rewords them (LIBRARY_MESSAGES).
    """

    class Meta(FlaskForm.Meta):
        """Flask-WTF's settings, with the portal's wording of the library's messages."""

        def get_translations(self, form: DefaultMeta) -> _PortalMessages:
            """The gettext of every field of FORM."""
            return _MESSAGES

    def process(self, *args: Any, **kwargs: Any) -> None:
        """Bind the data, then clean every text field (before any page can show it)."""
        super().process(*args, **kwargs)
        self._bidi_refused = [field for field in self._text_fields() if _clean_field(field)]

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields' own validation, then the bidi refusals and the NUL check."""
        valid = bool(super().validate(extra_validators))
        refused = getattr(self, "_bidi_refused", [])
        for field in refused:
            field.errors = [*field.errors, str(BIDI_REFUSAL)]
        for field in self:
            if any(isinstance(value, str) and "\x00" in value for value in field.raw_data or ()):
                field.errors = [*field.errors, str(NUL_REFUSAL)]
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
