"""The certificate set in force, as GET /api/v1/config and `portal config-export` give it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.domain import certs
from portal.domain.certs import colon_fingerprint
from portal.domain.inforce import InForce, in_force_by_usage
from portal.models import Certificate, Identity, Partner


def config_document(session: Session, *, at: datetime, overlap: timedelta) -> dict[str, Any]:
    """Every identity and partner with its active, previous and scheduled certificates at AT."""
    by_identity = _group(session, Certificate.identity_id.is_not(None), "identity_id")
    by_partner = _group(session, Certificate.partner_id.is_not(None), "partner_id")
    identities = session.scalars(select(Identity).order_by(Identity.as2_id, Identity.id))
    partners = session.scalars(
        select(Partner).options(selectinload(Partner.identity)).order_by(Partner.as2_id)
    )
    return {
        "generated_at": _iso(at),
        "identities": [
            {
                "as2_id": identity.as2_id,
                "name": identity.name,
                "environment": identity.environment,
                "certificates": _certificates(by_identity.get(identity.id, []), at, overlap),
            }
            for identity in identities
        ],
        "partners": [
            {
                "as2_id": partner.as2_id,
                "name": partner.name,
                "identity": partner.identity.as2_id,
                "environment": partner.environment,
                "certificates": _certificates(by_partner.get(partner.id, []), at, overlap),
            }
            for partner in partners
        ],
    }


def _group(session: Session, condition: Any, column: str) -> dict[int, list[Certificate]]:
    grouped: dict[int, list[Certificate]] = {}
    for certificate in session.scalars(select(Certificate).where(condition)):
        grouped.setdefault(getattr(certificate, column), []).append(certificate)
    return grouped


def _certificates(
    certificates: list[Certificate], at: datetime, overlap: timedelta
) -> dict[str, dict[str, Any]]:
    return {
        usage: _state(state)
        for usage, state in in_force_by_usage(certificates, at=at, overlap=overlap).items()
    }


def _state(state: InForce[Certificate]) -> dict[str, Any]:
    return {
        "active": _cert(state.active),
        "previous": _cert(state.previous),
        "scheduled": [_cert(c) for c in state.scheduled],
    }


def _cert(certificate: Certificate | None) -> dict[str, Any] | None:
    if certificate is None:
        return None
    return {
        "fingerprint_sha256": colon_fingerprint(certificate.sha256),
        "serial": certificate.serial,
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "not_before": _iso(certificate.not_before),
        "not_after": _iso(certificate.not_after),
        "activate_at": _iso(certificate.activate_at) if certificate.activate_at else None,
        "pem": certs.export_pem(certificate.der).decode("ascii"),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
