"""Forms of the partner blueprint."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields import TimeField
from wtforms.validators import Email, Length, Optional

from portal.domain.vocab import Usage
from portal.web.forms import USAGE_CHOICES, PortalForm, timezone_choices


class _ContactMixin:
    contact_name = StringField("Your name", validators=[Optional(), Length(max=200)])
    contact_email = StringField("Your email", validators=[Optional(), Email(), Length(max=254)])


class UploadForm(_ContactMixin, PortalForm):
    """The partner's certificate: a file or pasted PEM, its usage, an optional window."""

    certificate = FileField("Certificate file (.pem, .cer, .crt, .der, .p7b, .p7c)")
    pasted = TextAreaField("…or paste the PEM text", validators=[Optional(), Length(max=70_000)])
    usage = SelectField("What is it for?", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    # The file checked in the first step, carried to the confirmation step.
    carried = HiddenField(validators=[Optional(), Length(max=100_000)])
    confirm_warnings = BooleanField("I have read the warnings and want to send this certificate")
    window_date = DateField("Proposed change date", validators=[Optional()])
    window_time = TimeField("Time", validators=[Optional()])
    # Checked in the view, and only when a window is proposed.
    window_timezone = SelectField("Time zone", validate_choice=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.window_timezone.choices = timezone_choices()


class WindowForm(_ContactMixin, PortalForm):
    """A proposed change window."""

    date = DateField("Date")
    time = TimeField("Time")
    timezone = SelectField("Time zone")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class AcknowledgeForm(PortalForm):
    """The partner installed our certificate."""

    installed_on = DateField("Installed on (optional)", validators=[Optional()])
    contact_name = StringField("Your name", validators=[Optional(), Length(max=200)])
