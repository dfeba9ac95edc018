"""Forms of the staff blueprint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.domain.languages import DEFAULT_LANGUAGE, LANGUAGE_CHOICES
from portal.domain.roles import Role
from portal.domain.scopes import Scope
from portal.domain.vocab import SUBSCRIBABLE_EVENTS, Environment, Usage
from portal.timeutil import is_valid_timezone, local_to_utc
from portal.web.forms import USAGE_CHOICES, PortalForm, default_timezone, timezone_choices

ROLE_CHOICES = [(role.value, role.title()) for role in Role]
ENVIRONMENT_CHOICES = [(environment.value, environment.title()) for environment in Environment]
KEY_SIZE_CHOICES = [(3072, "RSA 3072 (recommended)"), (2048, "RSA 2048"), (4096, "RSA 4096")]


def split_emails(text: str) -> list[str]:
    """Emails from a textarea: one per line, or separated by commas or semicolons."""
    return [part.strip() for part in text.replace(";", "\n").replace(",", "\n").splitlines()]


class EmailListField(TextAreaField):
    """Email addresses edited as text, one per line; a stored list is shown that way."""

    def process_data(self, value: Any) -> None:
        """Join a list of addresses (a partner's contact_emails) into lines."""
        self.data = "\n".join(value) if isinstance(value, list | tuple) else value


class IdentityForm(PortalForm):
    """Create or edit one of our AS2 identities.

    Required fields need InputRequired too: on an edit form, a field left out of the
    request would otherwise keep the stored value and pass.
    """

    name = StringField("Name", validators=[InputRequired(), DataRequired(), Length(max=200)])
    as2_id = StringField("AS2 ID", validators=[InputRequired(), DataRequired(), Length(max=128)])
    environment = SelectField("Environment", choices=ENVIRONMENT_CHOICES)
    organisation = StringField(
        "Organisation",
        validators=[Optional(), Length(max=200)],
        description="Defaults to the name.",
    )
    contact_email = StringField("Contact email", validators=[Optional(), Email(), Length(max=254)])


class PartnerForm(PortalForm):
    """Create or edit a trading partner (required fields as in IdentityForm)."""

    name = StringField("Name", validators=[InputRequired(), DataRequired(), Length(max=200)])
    as2_id = StringField("AS2 ID", validators=[InputRequired(), DataRequired(), Length(max=128)])
    identity_id = SelectField("Trades with identity", coerce=int, validate_choice=True)
    contact_emails = EmailListField(
        "Contact emails",
        validators=[InputRequired(), DataRequired(), Length(max=4000)],
        description="One per line. They receive links and notices.",
    )
    timezone = SelectField("Time zone", default=default_timezone)
    language = SelectField(
        "Language",
        choices=LANGUAGE_CHOICES,
        default=DEFAULT_LANGUAGE,
        description="Of the emails the partner receives. Its page follows the reader's browser.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class UserCreateForm(PortalForm):
    """Invite a staff member; the password is generated and shown once."""

    email = StringField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    # The least privilege unless the admin chooses more.
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    timezone = SelectField("Time zone", default=default_timezone)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class UserEditForm(PortalForm):
    """Change a staff member's role, status and zone."""

    role = SelectField("Role", choices=ROLE_CHOICES)
    is_enabled = BooleanField("Enabled (may sign in)")
    timezone = SelectField("Time zone")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class ConfirmForm(PortalForm):
    """A bare form for POST buttons: CSRF token only."""


class GenerateCertificateForm(PortalForm):
    """New key and self-signed certificate for an identity."""

    usage = SelectField("Usage", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    key_size = SelectField("Key", choices=KEY_SIZE_CHOICES, coerce=int, default=3072)
    days = IntegerField(
        "Valid for (days)", default=730, validators=[InputRequired(), NumberRange(1, 3650)]
    )


class CsrForm(PortalForm):
    """New key and a certificate signing request for a CA."""

    usage = SelectField("Usage", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    key_size = SelectField("Key", choices=KEY_SIZE_CHOICES, coerce=int, default=3072)


class CompleteCsrForm(PortalForm):
    """The CA-signed certificate for a pending request."""

    certificate = FileField("Signed certificate (PEM, DER or PKCS#7)", validators=[FileRequired()])


class ImportPemForm(PortalForm):
    """A certificate and its PEM key."""

    usage = SelectField("Usage", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    certificate = FileField("Certificate (PEM or DER, chain allowed)", validators=[FileRequired()])
    private_key = FileField("Private key (PEM)", validators=[FileRequired()])
    passphrase = PasswordField("Key passphrase", description="Only if the key is encrypted.")


class ImportPkcs12Form(PortalForm):
    """A PKCS#12 file with key, certificate and chain."""

    usage = SelectField("Usage", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    keystore = FileField("PKCS#12 file (.p12, .pfx)", validators=[FileRequired()])
    passphrase = PasswordField("Passphrase")


class ExportKeystoreForm(PortalForm):
    """A passphrase for the exported PKCS#12."""

    passphrase = PasswordField(
        "Passphrase for the file",
        validators=[
            DataRequired(),
            Length(min=8, max=1024, message="Use at least 8 and at most 1024 characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat the passphrase",
        validators=[DataRequired(), EqualTo("passphrase", message="The two entries differ.")],
    )
    legacy = BooleanField(
        "Legacy encryption (3DES/SHA-1) for old AS2 software that cannot read AES",
    )


class LinkForm(PortalForm):
    """A new share link for a partner."""

    purposes = SelectMultipleField(
        "Purposes",
        choices=[("download", "Download our certificate"), ("upload", "Upload theirs")],
        default=["download", "upload"],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    expires = StringField(
        "Expires after",
        default="14d",
        validators=[DataRequired(), Length(max=12)],
        description="A number and s, m, h or d, e.g. 14d.",
    )
    max_uploads = IntegerField(
        "Maximum uploads", default=3, validators=[InputRequired(), NumberRange(0, 20)]
    )


class WhenForm(PortalForm):
    """An activation moment: now, the partner's proposal, or a date and time in a zone."""

    when = SelectField(
        "Activate",
        choices=[
            ("proposal", "At the partner's proposed time"),
            ("now", "Now"),
            ("chosen", "At this date and time"),
        ],
        default="chosen",
    )
    date = DateField("Date", validators=[Optional()])
    time = TimeField("Time", validators=[Optional()])
    timezone = SelectField("Time zone", default=default_timezone)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


def chosen_moment(form: WhenForm, proposal: datetime | None, now: datetime) -> datetime | None:
    """The moment a WhenForm names, or None after putting an error on the form."""
    if form.when.data == "now":
        return now
    if form.when.data == "proposal":
        if proposal is None:
            form.when.errors = ["There is no proposed time; choose now or a date and time."]
        return proposal
    if form.date.data is None or form.time.data is None:
        form.date.errors = ["Give a date and a time."]
        return None
    zone = form.timezone.data or default_timezone()
    if not is_valid_timezone(zone):
        form.timezone.errors = ["Choose a time zone."]
        return None
    moment = local_to_utc(form.date.data, form.time.data, zone)
    if moment is None:
        form.date.errors = ["This date and time cannot be used; check the year."]
    return moment


class ReasonForm(PortalForm):
    """A reason that goes to the partner or into the audit trail."""

    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])


class StaffUploadForm(PortalForm):
    """A partner certificate received by email, uploaded by staff."""

    certificate = FileField("Certificate file", validators=[FileRequired()])
    usage = SelectField("Usage", choices=USAGE_CHOICES, default=Usage.BOTH.value)
    confirm_warnings = BooleanField("Accept despite the warnings")


class ApiTokenForm(PortalForm):
    """A new API token: its name and what it may do."""

    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=64)],
        description="Letters, digits, '-', '_' or '.'; say which program uses it.",
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=[
            (Scope.CONFIG_READ.value, "config:read (read the AS2 configuration)"),
            (Scope.KEYS_EXPORT.value, "keys:export (export our private keys)"),
        ],
        default=[Scope.CONFIG_READ.value],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class WebhookForm(PortalForm):
    """A new webhook: the receiver's URL and the events it receives (the secret is made)."""

    url = StringField(
        "URL",
        validators=[DataRequired(), Length(max=2000)],
        description="https:// (or http://) address of the receiver; it must answer 2xx.",
    )
    events = SelectMultipleField(
        "Events",
        choices=[(event.value, event.value) for event in SUBSCRIBABLE_EVENTS],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class _CampaignFields(PortalForm):
    """What every campaign form asks: the identity, a moment in a zone, a note."""

    identity = SelectField("Identity", coerce=int, validate_choice=True)
    date = DateField("On", validators=[Optional()])
    time = TimeField("At", validators=[Optional()])
    timezone = SelectField("Time zone", default=default_timezone)
    message = TextAreaField(
        "Note to the partners (optional)",
        validators=[Optional(), Length(max=2000)],
        description="Plain text, shown as typed in every email.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class CampaignForm(_CampaignFields):
    """Start a rotation campaign: our identity, its new certificate, the switch, a note."""

    certificate = StringField(
        "New certificate (SHA-256)",
        validators=[InputRequired(), DataRequired(), Length(max=200)],
        description="Its fingerprint, as the identity's page shows it; it needs its private key.",
    )
    date = DateField("Switch on", validators=[Optional()])
    request_upload = BooleanField("Also ask each partner for its new certificate")


class CertificateRequestForm(_CampaignFields):
    """Ask many partners of an identity for their new certificates, in force by a date."""

    expiring_before = DateField(
        "Partners whose certificate in force expires before",
        validators=[Optional()],
        description="Partners with no certificate in force are asked too; those with a "
        "replacement scheduled are not. Leave empty to ask every partner of the identity.",
    )
    date = DateField("New certificate in force by", validators=[Optional()])
