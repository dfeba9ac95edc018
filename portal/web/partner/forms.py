"""Forms of the partner blueprint."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    Field,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import TimeField
from wtforms.validators import Email, Length, Optional, ValidationError

from portal.domain.vocab import Usage
from portal.web.forms import PortalForm
from portal.web.partner.zones import canonical_zone, is_known_zone

# The usage choices worded for partners, in the page's language.
USAGE_CHOICES = [
    (Usage.BOTH.value, _l("Signing and encryption")),
    (Usage.SIGNING.value, _l("Signing only")),
    (Usage.ENCRYPTION.value, _l("Encryption only")),
]


def _zone_field(label: object, **options: object) -> StringField:
    """A time zone typed or picked from the page's suggestions (<datalist id="zones">)."""
    return StringField(
        label,
        filters=[canonical_zone],
        description=_l("Type a time zone such as Europe/Berlin or America/New_York, or pick one."),
        render_kw={"list": "zones", "autocomplete": "off", "spellcheck": "false"},
        **options,  # type: ignore[arg-type]
    )


def _known_zone(_form: object, field: Field) -> None:
    """Refuse a zone this machine does not know (empty means the default zone)."""
    if field.data and not is_known_zone(field.data):
        raise ValidationError(
            _l(
                "We do not know that time zone: type one such as Europe/Berlin or "
                "America/New_York, or pick one from the list."
            )
        )


def _contact_fields(prefix: str) -> tuple[StringField, StringField]:
    """The partner's name and email, optional; PREFIX makes their ids unique on the page.

    The page holds several forms with these fields: the names stay (what is posted), the
    ids differ, so each label and each error link points at its own form's field.
    """
    return (
        StringField(
            _l("Your name"), validators=[Optional(), Length(max=200)], id=f"{prefix}contact_name"
        ),
        StringField(
            _l("Your email"),
            validators=[Optional(), Email(), Length(max=254)],
            id=f"{prefix}contact_email",
        ),
    )


class _ContactMixin:
    contact_name, contact_email = _contact_fields("")


class UploadForm(_ContactMixin, PortalForm):
    """The partner's certificate: a file or pasted PEM, its usage, an optional window."""

    certificate = FileField(_l("Certificate file (.pem, .cer, .crt, .der, .p7b, .p7c)"))
    pasted = TextAreaField(
        _l("…or paste the PEM text"), validators=[Optional(), Length(max=70_000)]
    )
    usage = SelectField(_l("What is it for?"), choices=USAGE_CHOICES, default=Usage.BOTH.value)
    # The file checked in the first step, carried to the confirmation step.
    carried = HiddenField(validators=[Optional(), Length(max=100_000)])
    confirm_warnings = BooleanField(
        _l("I have read the warnings and want to send this certificate")
    )
    window_date = DateField(_l("Proposed change date"), validators=[Optional()])
    window_time = TimeField(_l("Time"), validators=[Optional()])
    # Checked in the view, and only when a window is proposed.
    window_timezone = _zone_field(_l("Time zone"), validators=[Optional(), Length(max=64)])


class WindowForm(PortalForm):
    """A proposed change window."""

    date = DateField(_l("Date"))
    time = TimeField(_l("Time"))
    timezone = _zone_field(_l("Time zone"), validators=[Length(max=64), _known_zone])
    contact_name, contact_email = _contact_fields("window_")


class AcknowledgeForm(PortalForm):
    """The partner installed our certificate."""

    installed_on = DateField(_l("Installed on (optional)"), validators=[Optional()])
    contact_name = StringField(
        _l("Your name"), validators=[Optional(), Length(max=200)], id="ack_contact_name"
    )
