"""Acknowledgements: a partner confirms they installed our certificate."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain.vocab import WebhookEvent
from portal.models import Acknowledgement, Certificate, Partner, ShareLink
from portal.services import audit, webhooks
from portal.services.actor import Actor


def acknowledge(
    session: Session,
    actor: Actor,
    link: ShareLink,
    *,
    certificate: Certificate | None,
    installed_on: date | None,
    contact_name: str | None,
    now: datetime,
) -> Acknowledgement:
    """Record that the partner installed our certificate."""
    ack = Acknowledgement(
        created_at=now,
        partner_id=link.partner_id,
        link_id=link.id,
        certificate_id=certificate.id if certificate is not None else None,
        installed_on=installed_on,
        contact_name=contact_name or None,
    )
    session.add(ack)
    session.flush()
    what = (
        f"certificate {certificate.sha256[:16]}…" if certificate is not None else "our certificate"
    )
    audit.record(
        session,
        actor,
        "link.acknowledged",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Partner confirmed they installed {what}"
        + (f" on {installed_on:%Y-%m-%d}" if installed_on else ""),
        details={"link_id": link.id, "acknowledgement_id": ack.id},
    )
    webhooks.emit(
        session,
        WebhookEvent.LINK_ACKNOWLEDGED,
        {
            "owner": webhooks.partner_data(link.partner),
            "acknowledgement_id": ack.id,
            "certificate": webhooks.certificate_data(certificate) if certificate else None,
            "installed_on": installed_on.isoformat() if installed_on else None,
            "contact_name": ack.contact_name,
        },
        now=now,
    )
    return ack


def latest_acknowledgement(session: Session, partner: Partner) -> Acknowledgement | None:
    """The partner's newest acknowledgement."""
    return session.scalar(
        select(Acknowledgement)
        .where(Acknowledgement.partner_id == partner.id)
        .order_by(Acknowledgement.id.desc())
        .limit(1)
    )
