"""What is in force for one owner (one of our identities or a partner), read from the database.

The rule itself is portal.domain.inforce; this is the one query that feeds it an owner's
certificates, so the upload check, the review page, rollback and the certificate page agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain.inforce import InForce, in_force
from portal.domain.vocab import usages_served
from portal.models import Certificate


@dataclass(frozen=True)
class Owner:
    """Whose certificates: one of our identities, or a partner (exactly one id is set)."""

    identity_id: int | None = None
    partner_id: int | None = None

    @classmethod
    def of(cls, certificate: Certificate) -> Owner:
        """The owner of CERTIFICATE."""
        if certificate.identity_id is not None:
            return cls(identity_id=certificate.identity_id)
        return cls(partner_id=certificate.partner_id)


def owner_certificates(session: Session, owner: Owner) -> list[Certificate]:
    """All of OWNER's certificates, withdrawn and expired ones included (the rule skips them)."""
    if owner.identity_id is not None:
        belongs = Certificate.identity_id == owner.identity_id
    else:
        belongs = Certificate.partner_id == owner.partner_id
    # Ordered by id: the rule breaks ties between equal activation times by input order.
    return list(session.scalars(select(Certificate).where(belongs).order_by(Certificate.id)))


def owner_state(
    session: Session, owner: Owner, usage: str, *, now: datetime, overlap: timedelta
) -> InForce[Certificate]:
    """OWNER's certificates for USAGE (signing or encryption) at NOW: active, previous, ..."""
    return in_force(owner_certificates(session, owner), usage, at=now, overlap=overlap)


def certificate_in_force(
    session: Session, owner: Owner, usage: str, *, now: datetime, overlap: timedelta
) -> Certificate | None:
    """OWNER's certificate in force for USAGE at NOW; for "both", the first usage that has one."""
    certificates = owner_certificates(session, owner)
    for served in usages_served(usage):
        active = in_force(certificates, served, at=now, overlap=overlap).active
        if active is not None:
            return active
    return None
