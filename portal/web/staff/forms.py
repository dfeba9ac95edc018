"""Forms of the staff blueprint."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.domain.roles import ROLES
from portal.models import ENVIRONMENTS


@cache
def timezone_choices() -> list[tuple[str, str]]:
    """Every IANA zone, sorted, for select boxes."""
    return [(zone, zone) for zone in sorted(available_timezones()) if "/" in zone or zone == "UTC"]


def split_emails(text: str) -> list[str]:
    """Emails from a textarea: one per line, or separated by commas or semicolons."""
    return [part.strip() for part in text.replace(";", "\n").replace(",", "\n").splitlines()]


class IdentityForm(FlaskForm):
    """Create or edit one of our AS2 identities."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    as2_id = StringField("AS2 ID", validators=[DataRequired(), Length(max=128)])
    environment = SelectField("Environment", choices=[(e, e.title()) for e in ENVIRONMENTS])
    organisation = StringField(
        "Organisation",
        validators=[Optional(), Length(max=200)],
        description="Defaults to the name.",
    )
    contact_email = StringField("Contact email", validators=[Optional(), Email(), Length(max=254)])


class PartnerForm(FlaskForm):
    """Create or edit a trading partner."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    as2_id = StringField("AS2 ID", validators=[DataRequired(), Length(max=128)])
    identity_id = SelectField("Trades with identity", coerce=int, validate_choice=True)
    contact_emails = TextAreaField(
        "Contact emails",
        validators=[DataRequired(), Length(max=4000)],
        description="One per line. They receive links and notices.",
    )
    timezone = SelectField("Time zone", default="UTC")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class UserCreateForm(FlaskForm):
    """Invite a staff member; the password is generated and shown once."""

    email = StringField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=[(r, r.title()) for r in ROLES])
    timezone = SelectField("Time zone", default="UTC")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class UserEditForm(FlaskForm):
    """Change a staff member's role, status and zone."""

    role = SelectField("Role", choices=[(r, r.title()) for r in ROLES])
    is_enabled = BooleanField("Enabled (may sign in)")
    timezone = SelectField("Time zone")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons: CSRF token only."""
