"""Every staff and partner form POST answers below 500 to bad input (issue 8, item 9a).

For each POST route of the staff and partner blueprints, signed in as an admin and with
real objects behind the URL, post an empty body, then a valid-looking body with each field
missing in turn, then with each field set to each kind of junk. Nothing may answer 5xx.
A new POST route fails `test_every_form_route_is_covered` until it is added here.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.domain import certs
from portal.extensions import keyring, link_signer
from portal.models import User
from portal.services import approvals, certificates, links, schedule, submissions, windows
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories

# Kinds of junk: nothing, a NUL and markup, a huge number, a far-away date.
JUNK = ("", "junk\x00<b>", "9" * 30, "9999-12-31")


@dataclass(frozen=True)
class File:
    """A file field's content; a fresh stream is made for every request."""

    data: bytes
    name: str = "file.pem"


def future(days: int = 3) -> datetime:
    return (utcnow() + timedelta(days=days)).replace(second=0, microsecond=0)


def when(prefix: str, moment: datetime) -> dict[str, Any]:
    return {
        f"{prefix}-when": "chosen",
        f"{prefix}-date": moment.strftime("%Y-%m-%d"),
        f"{prefix}-time": moment.strftime("%H:%M"),
        f"{prefix}-timezone": "UTC",
    }


class World:
    """The objects a route needs, made on first use."""

    def __init__(self, session: Session, admin: User) -> None:
        self.session = session
        self.admin = admin

    @cached_property
    def two_factor_on(self) -> str:
        """The admin's TOTP secret, two-factor sign-in being on."""
        return factories.two_factor(self.session, keyring(), self.admin)[0]

    @cached_property
    def identity(self) -> Any:
        return factories.identity(self.session)

    @cached_property
    def partner(self) -> Any:
        return factories.partner(self.session, self.identity)

    @cached_property
    def shared(self) -> tuple[Any, str]:
        return links.create_link(
            self.session, factories.ACTOR, link_signer(), self.partner, can_download=True,
            can_upload=True, lifetime=timedelta(days=14), max_uploads=20, now=utcnow(),
        )  # fmt: skip

    @cached_property
    def failed_message(self) -> Any:
        from portal.services import outbox

        message = outbox.queue_email(
            self.session, recipients=["edi@example.com"], subject="Hello", body="Hi"
        )
        assert message is not None
        message.attempts, message.last_error = 1, "TimeoutError: timed out"
        self.session.flush()
        return message

    @cached_property
    def api_token(self) -> Any:
        from portal.services import api_tokens

        made = api_tokens.create(
            self.session, factories.ACTOR, "forms", ["config:read"], now=utcnow()
        )
        return made.token

    @cached_property
    def webhook(self) -> Any:
        from portal.services import webhooks

        return webhooks.create(
            self.session, factories.ACTOR, keyring(), "http://127.0.0.1:9/hook",
            ["link.acknowledged"], now=utcnow(), allow_private=True,
        ).endpoint  # fmt: skip

    @cached_property
    def failed_delivery(self) -> Any:
        from portal.services import webhooks

        delivery = webhooks.send_test(self.session, factories.ACTOR, self.webhook, now=utcnow())
        delivery.attempts, delivery.last_error = webhooks.MAX_ATTEMPTS, "HTTP 500: down"
        self.session.flush()
        return delivery

    @property
    def link(self) -> Any:
        return self.shared[0]

    @property
    def token(self) -> str:
        return self.shared[1]

    @cached_property
    def partner_pem(self) -> bytes:
        cert, _ = certfactory.make_cert(now=utcnow(), days=400, key=certfactory.rsa_key(3072))
        return certfactory.pem(cert)

    @cached_property
    def submission(self) -> Any:
        outcome = submissions.submit_via_link(
            self.session, factories.ACTOR, self.link, data=self.partner_pem, usage="both",
            now=utcnow(), overlap=timedelta(days=7), confirm_warnings=True,
        )  # fmt: skip
        assert outcome.submission is not None
        return outcome.submission

    @cached_property
    def partner_certificate(self) -> Any:
        """A partner certificate approved to take effect in a week (not yet in force)."""
        approver = factories.user(self.session, role="approver", password="forms test passphrase")
        certificate = approvals.approve_submission(
            self.session, Actor.for_user(approver), self.submission,
            activate_at=future(7), now=utcnow(),
        )  # fmt: skip
        assert certificate is not None
        return certificate

    @cached_property
    def our_certificate(self) -> Any:
        """Our certificate with a schedule proposed by an operator, waiting for approval."""
        certificate = factories.identity_certificate(self.session, keyring(), self.identity)
        operator = factories.user(self.session, role="operator", password="forms test passphrase")
        schedule.schedule_identity_certificate(
            self.session, Actor.for_user(operator), certificate, activate_at=future(), now=utcnow()
        )
        return certificate

    @cached_property
    def partner_window(self) -> Any:
        return windows.propose_window(
            self.session, factories.ACTOR, self.link, starts_at=future(), timezone="UTC",
            contact_name=None, contact_email=None, now=utcnow(),
        )  # fmt: skip

    @cached_property
    def staff_window(self) -> Any:
        return windows.propose_window_as_staff(
            self.session, factories.ACTOR, self.partner, starts_at=future(), timezone="UTC",
            now=utcnow(),
        )  # fmt: skip

    @cached_property
    def pending_csr(self) -> Any:
        return certificates.create_csr(
            self.session, factories.ACTOR, keyring(), self.identity, usage="both", key_size=2048
        )

    @cached_property
    def user(self) -> User:
        return factories.user(self.session, role="viewer", password="forms test passphrase")

    @cached_property
    def new_certificate(self) -> Any:
        """Our certificate with its key, not scheduled: what a campaign rotates to."""
        return factories.identity_certificate(self.session, keyring(), self.identity)

    @cached_property
    def latecomer(self) -> Any:
        """A partner added to the identity after the campaign started."""
        self.campaign  # noqa: B018
        return factories.partner(self.session, self.identity)

    @cached_property
    def campaign(self) -> Any:
        """A campaign for our identity (its partner included), on another certificate."""
        from portal.services import campaigns

        self.partner  # noqa: B018  (the campaign reaches the identity's partners)
        certificate = factories.identity_certificate(self.session, keyring(), self.identity)
        wanted = campaigns.StartRequest(self.identity, certificate.sha256, future(10))
        return campaigns.start(self.session, factories.ACTOR, wanted, now=utcnow())

    @cached_property
    def keyed(self) -> tuple[bytes, bytes, bytes]:
        """A certificate with its key as PEM files and as PKCS#12 (passphrase 'p12 pass')."""
        cert, key = certfactory.make_cert(now=utcnow(), days=400)
        p12 = certs.export_pkcs12(
            private_key=key, certificate_der=certfactory.der(cert), chain_ders=[],
            passphrase=b"p12 pass", friendly_name=b"test",
        )  # fmt: skip
        return certfactory.pem(cert), certfactory.key_bytes(key), p12


Route = Callable[[World], tuple[str, dict[str, Any]]]


def _partner_fields(w: World) -> dict[str, Any]:
    return _partner_form(w.identity.id)


def _partner_form(identity_id: int) -> dict[str, Any]:
    return {
        "name": "Initech",
        "as2_id": "INITECH",
        "identity_id": str(identity_id),
        "contact_emails": "edi@initech.example\nops@initech.example",
        "timezone": "Europe/Berlin",
    }


def _identity_fields() -> dict[str, Any]:
    return {
        "name": "Station",
        "as2_id": "STATIONAS2",
        "environment": "production",
        "organisation": "Acme",
        "contact_email": "ops@acme.example",
    }


ROUTES: dict[str, Route] = {
    # auth (signed in: the password change; sign-in itself is tested anonymously below)
    "auth.change_password": lambda w: (
        "/account/password",
        {"current_password": "x" * 16, "new_password": "y" * 16, "confirm": "y" * 16},
    ),
    "auth.logout": lambda w: ("/logout", {}),
    "auth.confirm": lambda w: ("/login/confirm", {"password": "p" * 16, "next": "/users"}),
    "auth.login": lambda w: ("/login", {"email": "a@example.com", "password": "p" * 16}),
    # two-factor: enrolment (a wrong code), turning it off (on for the admin first); the
    # code step itself with a pending sign-in is in test_two_factor.py
    "auth.two_factor_setup": lambda w: ("/account/two-factor", {"code": "123456"}),
    "auth.two_factor_disable": lambda w: (
        w.two_factor_on and "/account/two-factor/disable",
        {"code": "123456"},
    ),
    "auth.two_factor_new_codes": lambda w: (
        w.two_factor_on and "/account/two-factor/recovery-codes",
        {"codes-code": "123456"},
    ),
    "auth.two_factor_login": lambda w: ("/login/two-factor", {"code": "123456"}),
    # staff: the outbox
    "staff.outbox_retry": lambda w: (f"/outbox/{w.failed_message.id}/retry", {}),
    # staff: API tokens
    "staff.token_create": lambda w: ("/tokens", {"name": "erp-sync", "scopes": ["config:read"]}),
    "staff.token_revoke": lambda w: (f"/tokens/{w.api_token.id}/revoke", {}),
    # staff: webhooks
    "staff.webhook_create": lambda w: (
        "/webhooks",
        {"url": "http://127.0.0.1:9/hook", "events": ["submission.received"]},
    ),
    "staff.webhook_remove": lambda w: (f"/webhooks/{w.webhook.id}/remove", {}),
    "staff.webhook_test": lambda w: (f"/webhooks/{w.webhook.id}/test", {}),
    "staff.webhook_retry": lambda w: (
        f"/webhooks/{w.webhook.id}/deliveries/{w.failed_delivery.id}/retry",
        {},
    ),
    # staff: directory and users
    "staff.identity_new": lambda w: ("/identities/new", _identity_fields()),
    "staff.identity_edit": lambda w: (f"/identities/{w.identity.id}/edit", _identity_fields()),
    "staff.partner_new": lambda w: ("/partners/new", _partner_fields(w)),
    "staff.partner_edit": lambda w: (f"/partners/{w.partner.id}/edit", _partner_fields(w)),
    "staff.user_new": lambda w: (
        "/users/new",
        {"email": "new.person@example.com", "role": "viewer", "timezone": "UTC"},
    ),
    "staff.user_edit": lambda w: (
        f"/users/{w.user.id}/edit",
        {"role": "approver", "is_enabled": "y", "timezone": "Europe/Paris"},
    ),
    "staff.user_reset_password": lambda w: (f"/users/{w.user.id}/reset-password", {}),
    "staff.user_reset_two_factor": lambda w: (f"/users/{w.user.id}/reset-two-factor", {}),
    # staff: our certificates
    "staff.certificate_generate": lambda w: (
        f"/identities/{w.identity.id}/certificates/generate",
        {"generate-usage": "both", "generate-key_size": "2048", "generate-days": "30"},
    ),
    "staff.csr_create": lambda w: (
        f"/identities/{w.identity.id}/csr",
        {"csr-usage": "both", "csr-key_size": "2048"},
    ),
    "staff.csr_complete": lambda w: (
        f"/identities/{w.identity.id}/csr/{w.pending_csr.id}/complete",
        {"complete-certificate": File(w.partner_pem)},
    ),
    "staff.certificate_import": lambda w: (
        f"/identities/{w.identity.id}/certificates/import",
        {
            "format": "pem",
            "pem-usage": "both",
            "pem-certificate": File(w.keyed[0]),
            "pem-private_key": File(w.keyed[1], "key.pem"),
            "pem-passphrase": "",
        },
    ),
    "staff.certificate_import[p12]": lambda w: (
        f"/identities/{w.identity.id}/certificates/import",
        {
            "format": "p12",
            "p12-usage": "signing",
            "p12-keystore": File(w.keyed[2], "a.p12"),
            "p12-passphrase": "p12 pass",
        },
    ),
    "staff.certificate_export": lambda w: (
        f"/certificates/{w.our_certificate.id}/keystore",
        {"passphrase": "a long passphrase", "confirm": "a long passphrase", "legacy": "y"},
    ),
    "staff.certificate_schedule": lambda w: (
        f"/certificates/{w.our_certificate.id}/schedule",
        when("schedule", future(4)),
    ),
    "staff.certificate_approve_schedule": lambda w: (
        f"/certificates/{w.our_certificate.id}/approve-schedule",
        {"expected": w.our_certificate.proposed_activate_at.isoformat()},
    ),
    "staff.certificate_reschedule": lambda w: (
        f"/certificates/{w.partner_certificate.id}/reschedule",
        when("reschedule", future(5)),
    ),
    "staff.certificate_cancel": lambda w: (
        f"/certificates/{w.partner_certificate.id}/cancel",
        {"cancel-reason": "The partner sent the wrong file."},
    ),
    "staff.certificate_rollback": lambda w: (
        f"/certificates/{w.our_certificate.id}/rollback",
        {"rollback-reason": "The partner cannot read it."},
    ),
    # staff: partners, links, submissions, windows
    "staff.link_create": lambda w: (
        f"/partners/{w.partner.id}/links",
        {"link-purposes": ["download", "upload"], "link-expires": "14d", "link-max_uploads": "3"},
    ),
    "staff.link_email": lambda w: (f"/partners/{w.partner.id}/links/{w.link.id}/email", {}),
    "staff.link_revoke": lambda w: (f"/partners/{w.partner.id}/links/{w.link.id}/revoke", {}),
    "staff.partner_certificate_upload": lambda w: (
        f"/partners/{w.partner.id}/certificates",
        {
            "upload-certificate": File(w.partner_pem),
            "upload-usage": "both",
            "upload-confirm_warnings": "y",
        },
    ),
    "staff.submission_approve": lambda w: (
        f"/submissions/{w.submission.id}/approve",
        when("approve", future(2)),
    ),
    "staff.submission_reject": lambda w: (
        f"/submissions/{w.submission.id}/reject",
        {"reject-reason": "Wrong common name."},
    ),
    "staff.window_propose": lambda w: (
        f"/partners/{w.partner.id}/windows",
        when("window", future()),
    ),
    "staff.campaign_start": lambda w: (
        "/campaigns",
        {
            "identity": str(w.partner.identity_id),
            "certificate": w.new_certificate.sha256,
            "date": future(10).strftime("%Y-%m-%d"),
            "time": "10:00",
            "timezone": "Europe/Berlin",
            "request_upload": "y",
            "message": "Call us",
        },
    ),
    "staff.campaign_resend": lambda w: (
        f"/campaigns/{w.campaign.id}/partners/{w.partner.id}/resend",
        {},
    ),
    "staff.campaign_include": lambda w: (
        f"/campaigns/{w.campaign.id}/partners/{w.latecomer.id}/include",
        {},
    ),
    "staff.campaign_resend_at_risk": lambda w: (f"/campaigns/{w.campaign.id}/resend-at-risk", {}),
    "staff.campaign_revoke_at_risk": lambda w: (f"/campaigns/{w.campaign.id}/revoke-at-risk", {}),
    "staff.campaign_request_start": lambda w: (
        "/campaigns/requests",
        {
            "request-identity": str(w.partner.identity_id),
            "request-expiring_before": future(30).strftime("%Y-%m-%d"),
            "request-date": future(20).strftime("%Y-%m-%d"),
            "request-time": "10:00",
            "request-timezone": "Europe/Berlin",
            "request-message": "Call us",
        },
    ),
    "staff.upload_request_send": lambda w: (f"/upload-requests/{w.partner.id}", {}),
    "staff.campaign_revoke": lambda w: (
        f"/campaigns/{w.campaign.id}/partners/{w.partner.id}/revoke",
        {},
    ),
    "staff.window_accept": lambda w: (
        f"/partners/{w.partner.id}/windows/{w.partner_window.id}/accept",
        {},
    ),
    # partner pages (the link is the credential)
    "partner.upload": lambda w: (
        f"/s/{w.token}/upload",
        {
            "certificate": File(w.partner_pem),
            "pasted": "",
            "usage": "both",
            "carried": "",
            "confirm_warnings": "y",
            "window_date": future().strftime("%Y-%m-%d"),
            "window_time": "10:00",
            "window_timezone": "Europe/Berlin",
            "contact_name": "Grace",
            "contact_email": "grace@initech.example",
        },
    ),
    "partner.machine_upload": lambda w: (
        f"/s/{w.token}/certificate",
        {"certificate": File(w.partner_pem), "usage": "both"},
    ),
    "partner.propose_window": lambda w: (
        f"/s/{w.token}/window",
        {
            "date": future().strftime("%Y-%m-%d"),
            "time": "10:00",
            "timezone": "Europe/Berlin",
            "contact_name": "Grace",
            "contact_email": "grace@initech.example",
        },
    ),
    "partner.accept_window": lambda w: (f"/s/{w.token}/window/{w.staff_window.id}/accept", {}),
    "partner.acknowledge": lambda w: (
        f"/s/{w.token}/acknowledge",
        {"installed_on": utcnow().strftime("%Y-%m-%d"), "contact_name": "Grace"},
    ),
}


def cases(fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The empty body, then each field set to each junk, then each field missing."""
    found: list[tuple[str, dict[str, Any]]] = [("empty body", {})]
    for name in fields:
        for junk in JUNK:
            found.append((f"{name}={junk!r}", {**fields, name: junk}))
    for name in fields:
        found.append((f"without {name}", {k: v for k, v in fields.items() if k != name}))
    return found


def encoded(fields: dict[str, Any]) -> dict[str, Any]:
    """FIELDS as the test client posts them (fresh streams for files)."""
    return {
        name: (io.BytesIO(value.data), value.name) if isinstance(value, File) else value
        for name, value in fields.items()
    }


def test_every_form_route_is_covered(app: Flask) -> None:
    posted = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
        and rule.endpoint.split(".")[0] in ("staff", "partner", "auth")
    }
    covered = {name.split("[")[0] for name in ROUTES}
    assert posted == covered


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_bad_input_never_answers_5xx(
    route: str, session: Session, make_user: Callable[..., User], login: Any
) -> None:
    admin = make_user("admin")
    client: FlaskClient = login(admin)
    url, fields = ROUTES[route](World(session, admin))
    failures = []
    for label, body in cases(fields):
        try:  # under TESTING an unhandled error propagates instead of answering 500
            response = client.post(url, data=encoded(body), content_type="multipart/form-data")
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # a panic in Rust code is a BaseException
            session.rollback()
            failures.append(f"{label}: {type(error).__name__}: {error}"[:300])
            continue
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code}")
    assert failures == [], f"{route} {url}"


def test_partner_edit_without_contact_emails_is_422_and_keeps_them(
    session: Session, admin_client: FlaskClient
) -> None:
    partner = factories.partner(session)
    before = list(partner.contact_emails)
    fields = _partner_form(partner.identity_id)
    del fields["contact_emails"]
    response = admin_client.post(f"/partners/{partner.id}/edit", data=fields)
    assert response.status_code == 422
    assert "Please fill in this field." in response.get_data(as_text=True)
    session.refresh(partner)
    assert partner.contact_emails == before
    assert partner.name != "Initech"


def test_partner_edit_shows_the_stored_emails_one_per_line(
    session: Session, admin_client: FlaskClient
) -> None:
    partner = factories.partner(session, contact_emails=["a@globex.example", "b@globex.example"])
    page = admin_client.get(f"/partners/{partner.id}/edit").get_data(as_text=True)
    assert "a@globex.example\nb@globex.example</textarea>" in page


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"email": "admin\x00@example.com", "password": "p" * 16},
        {"email": "admin@example.com", "password": "p\x00" * 8},
        {"email": "a" * 5000, "password": "p" * 5000},
    ],
)
def test_sign_in_with_malformed_fields_is_refused_not_500(client: FlaskClient, fields) -> None:
    response = client.post("/login", data=fields)
    assert 400 <= response.status_code < 500
