"""Factories for test data, made at test time through the services."""

from __future__ import annotations

import base64
import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import insert
from sqlalchemy.orm import Session

from portal.domain.keys import KeyRing
from portal.domain.tokens import LinkSigner
from portal.models import Certificate, Identity, Partner, ShareLink, Submission, User
from portal.services import certificates, directory, links, submissions, users
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory

_sequence = itertools.count(1)
ACTOR = Actor("tests")


def new_kek() -> str:
    """A fresh key-encryption key."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def user(session: Session, *, role: str = "viewer", password: str, **fields: Any) -> User:
    """A user with a unique email."""
    email = fields.pop("email", f"user{next(_sequence)}-{role}@example.com")
    created, _ = users.create_user(
        session, ACTOR, email=email, role=role, password=password, **fields
    )
    return created


def identity(session: Session, **fields: Any) -> Identity:
    """An identity with a unique AS2 ID."""
    number = next(_sequence)
    data = {
        "name": f"Acme Station {number}",
        "as2_id": f"ACME{number}",
        "environment": "production",
        "organisation": "Acme Corp",
    }
    data.update(fields)
    return directory.create_identity(session, ACTOR, directory.IdentityData(**data))


def partner(session: Session, identity_: Identity | None = None, **fields: Any) -> Partner:
    """A partner with a unique AS2 ID, of IDENTITY_ (a new one when not given)."""
    owner = identity_ or identity(session)
    number = next(_sequence)
    data: dict[str, Any] = {
        "name": f"Globex {number}",
        "as2_id": f"GLOBEX{number}",
        "identity_id": owner.id,
        "contact_emails": [f"edi{number}@globex.example"],
        "timezone": "Europe/Berlin",
    }
    data.update(fields)
    return directory.create_partner(session, ACTOR, directory.PartnerData(**data))


def identity_certificate(
    session: Session,
    keyring: KeyRing,
    identity_: Identity,
    *,
    usage: str = "both",
    days: int = 365,
) -> Certificate:
    """An identity certificate with its key (a cached test key, imported through the service)."""
    now = utcnow()
    cert, key = certfactory.make_cert(
        now=now, days=days, subject=certfactory.name(identity_.as2_id, identity_.organisation)
    )
    stored = certificates.import_pem(
        session,
        ACTOR,
        keyring,
        identity_,
        cert_data=certfactory.pem(cert),
        key_data=certfactory.key_bytes(key),
        passphrase=None,
        usage=usage,
        now=now,
    )
    return stored.certificate


def partner_certificate_row(
    session: Session,
    partner_: Partner,
    *,
    now: datetime,
    expires_in: timedelta,
    n: int,
    activate_in: timedelta = timedelta(days=-300),
) -> None:
    """A partner certificate row (fake fingerprints from N) expiring EXPIRES_IN after NOW.

    Inserted directly with its dates: what the reports and campaigns read, without the
    upload, check and approval a real one goes through.
    """
    cert, _ = certfactory.make_cert(now=now, days=5)
    session.execute(
        insert(Certificate),
        [
            {
                "partner_id": partner_.id, "usage": "both", "der": certfactory.der(cert),
                "chain_pem": "", "sha256": f"{n:064x}", "sha1": f"{n:040x}",
                "subject": "CN=X", "issuer": "CN=X", "serial": str(n),
                "not_before": now - timedelta(days=400), "not_after": now + expires_in,
                "key_type": "RSA", "source": "uploaded", "activate_at": now + activate_in,
                "approved_at": now + activate_in, "created_at": now - timedelta(days=300),
            }
        ],
    )  # fmt: skip


def share_link(
    session: Session,
    partner_: Partner,
    *,
    signer: LinkSigner | None = None,
    can_download: bool = True,
    can_upload: bool = True,
    lifetime: timedelta = timedelta(days=14),
    max_uploads: int = 3,
    now: datetime | None = None,
) -> ShareLink:
    """A link for PARTNER_ (use links.create_link directly when the token is needed)."""
    link, _token = links.create_link(
        session,
        ACTOR,
        signer or LinkSigner(["x" * 32]),
        partner_,
        can_download=can_download,
        can_upload=can_upload,
        lifetime=lifetime,
        max_uploads=max_uploads,
        now=now or utcnow(),
    )
    return link


def submission(
    session: Session, link: ShareLink, *, usage: str = "both", days: int = 400
) -> Submission:
    """A received submission through LINK of a fresh, acceptable certificate."""
    now = utcnow()
    cert, _ = certfactory.make_cert(now=now, days=days, key_size=3072)
    outcome = submissions.submit_via_link(
        session, ACTOR, link, data=certfactory.pem(cert), usage=usage, now=now,
        overlap=timedelta(days=7), confirm_warnings=True,
    )  # fmt: skip
    assert outcome.submission is not None, outcome.report.to_dict()
    return outcome.submission


def two_factor(
    session: Session, ring: KeyRing, user: User, *, now: datetime | None = None
) -> tuple[str, list[str]]:
    """Turn on USER's two-factor sign-in: (the TOTP secret, the recovery codes)."""
    from portal.domain import totp
    from portal.services import two_factor as service

    moment = now or utcnow()
    secret = totp.new_secret()
    # The code of the step before NOW, so a test may still use the current step's code.
    code = pyotp.TOTP(secret).at(moment - timedelta(seconds=30))
    codes = service.enable(session, ring, ACTOR, user, secret=secret, code=code, now=moment)
    return secret, codes
