"""Scheduling our certificates (four eyes), cancelling, rescheduling and rolling back.

Activation itself is derived from activate_at (portal.domain.inforce); these functions
only decide activate_at, withdraw certificates, and leave a trace in the audit trail
and the outbox. Partner submissions are approved in portal.services.approvals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.domain.certs import short_fingerprint
from portal.domain.inforce import in_force
from portal.domain.vocab import WebhookEvent, usages_served
from portal.models import Certificate, Submission
from portal.services import audit, webhooks, windows
from portal.services.actor import Actor
from portal.services.errors import ServiceError

MAX_REASON = 2000
# A moment given as "now" may lag the clock by this much (a form filled a minute ago).
NOW_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Rules:
    """Settings the scheduling rules depend on."""

    overlap: timedelta


def check_activation_time(
    certificate_not_before: datetime,
    certificate_not_after: datetime,
    activate_at: datetime,
    now: datetime,
) -> None:
    """Refuse an activation in the past, before the certificate starts or after it ends."""
    if activate_at < now - NOW_TOLERANCE:
        raise ServiceError(
            "The activation time is in the past; choose a future time or 'now'.",
            field="activate_at",
        )
    if activate_at < certificate_not_before:
        raise ServiceError(
            f"The certificate is not valid before {certificate_not_before:%Y-%m-%d %H:%M} UTC; "
            "choose a later activation time.",
            field="activate_at",
        )
    if activate_at >= certificate_not_after:
        raise ServiceError(
            f"The certificate expires on {certificate_not_after:%Y-%m-%d %H:%M} UTC, before "
            "that activation time.",
            field="activate_at",
        )


def schedule_identity_certificate(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    *,
    activate_at: datetime,
    now: datetime,
) -> None:
    """Propose when our certificate takes effect; another user must approve (four eyes)."""
    lock(session, certificate)
    _require_identity(certificate)
    _require_changeable(certificate, now)
    check_activation_time(certificate.not_before, certificate.not_after, activate_at, now)
    certificate.proposed_activate_at = max(activate_at, now)
    certificate.proposed_by_id = actor.user_id
    audit.record(
        session,
        actor,
        "certificate.schedule_proposed",
        object_type="identity",
        object_id=certificate.identity_id,
        summary=f"Proposed activating certificate {short_fingerprint(certificate.sha256)} "
        f"at {certificate.proposed_activate_at:%Y-%m-%d %H:%M} UTC (needs a second person)",
        details={"certificate_id": certificate.id},
    )


def approve_identity_schedule(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    *,
    now: datetime,
    expected: datetime | None = None,
) -> None:
    """A second person confirms a proposed schedule; the certificate then takes effect on time.

    EXPECTED, when given, is the proposed time the approver saw: a proposal changed since
    is refused rather than approved unseen.
    """
    lock(session, certificate)
    _require_identity(certificate)
    if expected is not None and certificate.proposed_activate_at != expected:
        raise ServiceError("The proposed time changed while you looked; review it again.")
    if certificate.proposed_activate_at is None:
        raise ServiceError("No schedule waits for approval on this certificate.")
    if actor.user_id is None or actor.user_id == certificate.proposed_by_id:
        raise ServiceError("A different person must approve this schedule (four eyes).")
    _require_changeable(certificate, now)
    check_activation_time(
        certificate.not_before, certificate.not_after, certificate.proposed_activate_at, now
    )
    certificate.activate_at = max(certificate.proposed_activate_at, now)
    certificate.proposed_activate_at = None
    certificate.approved_by_id = actor.user_id
    certificate.approved_at = now
    audit.record(
        session,
        actor,
        "certificate.scheduled",
        object_type="identity",
        object_id=certificate.identity_id,
        summary=f"Approved: certificate {short_fingerprint(certificate.sha256)} takes "
        f"effect at {certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={"certificate_id": certificate.id},
    )
    webhooks.emit(
        session, WebhookEvent.CERTIFICATE_SCHEDULED, webhooks.certificate_event(certificate),
        now=now,
    )  # fmt: skip
    partners = certificate.identity.partners if certificate.identity else []
    windows.agree_windows_at(
        session, actor, [partner.id for partner in partners], certificate,
        because=f"approving our certificate {short_fingerprint(certificate.sha256)} "
        "for that time", now=now,
    )  # fmt: skip


def schedules_waiting(session: Session) -> list[Certificate]:
    """Our certificates whose proposed time waits for a second person, soonest first."""
    return list(
        session.scalars(
            select(Certificate)
            .options(selectinload(Certificate.identity))
            .where(
                Certificate.identity_id.is_not(None),
                Certificate.proposed_activate_at.is_not(None),
                Certificate.withdrawn_at.is_(None),
            )
            .order_by(Certificate.proposed_activate_at, Certificate.id)
        )
    )


def cancel_schedule(
    session: Session, actor: Actor, certificate: Certificate, *, reason: str, now: datetime
) -> None:
    """Withdraw a certificate before it takes effect (approved or proposed)."""
    lock(session, certificate)
    _require_changeable(certificate, now)
    if certificate.activate_at is None and certificate.proposed_activate_at is None:
        raise ServiceError("This certificate is not scheduled.")
    _withdraw(session, actor, certificate, reason=reason, now=now, action="certificate.cancelled")


def rollback(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    siblings: list[Certificate],
    *,
    reason: str,
    now: datetime,
    rules: Rules,
) -> Certificate:
    """During the overlap, withdraw the active certificate so the previous one is active again."""
    lock(session, certificate)
    states = [
        in_force(siblings, usage, at=now, overlap=rules.overlap)
        for usage in usages_served(certificate.usage)
    ]
    if not all(state.active is certificate for state in states):
        raise ServiceError("Only the certificate in force can be rolled back.")
    previous = [state.previous for state in states if state.previous is not None]
    if not previous:
        raise ServiceError(
            "There is no previous certificate to go back to (none, or the overlap has ended)."
        )
    _withdraw(session, actor, certificate, reason=reason, now=now, action="certificate.rolled_back")
    webhooks.emit(
        session, WebhookEvent.CERTIFICATE_ROLLED_BACK,
        webhooks.certificate_event(
            certificate, reason=certificate.withdrawn_reason,
            previous=webhooks.certificate_data(previous[0]),
        ),
        now=now,
    )  # fmt: skip
    return previous[0]


def _withdraw(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    *,
    reason: str,
    now: datetime,
    action: str,
) -> None:
    reason = reason.strip()
    if not reason:
        raise ServiceError("Give a reason; it goes into the audit trail.", field="reason")
    certificate.withdrawn_at = now
    certificate.withdrawn_reason = reason[:MAX_REASON]
    certificate.proposed_activate_at = None
    owner_type = "identity" if certificate.identity_id else "partner"
    audit.record(
        session,
        actor,
        action,
        object_type=owner_type,
        object_id=certificate.identity_id or certificate.partner_id,
        summary=f"{action.split('.')[1].replace('_', ' ').capitalize()} certificate "
        f"{short_fingerprint(certificate.sha256)}: {reason[:200]}",
        details={"certificate_id": certificate.id, "reason": reason[:MAX_REASON]},
    )


def lock(session: Session, row: Certificate | Submission) -> None:
    """Reload ROW under a row lock (PostgreSQL) so two decisions cannot both pass the checks.

    On SQLite the write transaction (BEGIN IMMEDIATE) already serialises them.
    """
    session.refresh(row, with_for_update=True)


def _require_identity(certificate: Certificate) -> None:
    if certificate.identity_id is None:
        raise ServiceError("Partner certificates are scheduled by approving their submission.")


def _require_changeable(certificate: Certificate, now: datetime) -> None:
    if certificate.withdrawn_at is not None:
        raise ServiceError("This certificate was withdrawn.")
    if certificate.activate_at is not None and certificate.activate_at <= now:
        raise ServiceError("This certificate is already in force; roll it back instead.")


def reschedule_partner_certificate(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    *,
    activate_at: datetime,
    now: datetime,
) -> None:
    """Move a partner certificate's activation before it takes effect."""
    lock(session, certificate)
    if certificate.partner_id is None:
        raise ServiceError("Our certificates are rescheduled by proposing a new time.")
    _require_changeable(certificate, now)
    if certificate.activate_at is None:
        raise ServiceError("This certificate is not scheduled.")
    check_activation_time(certificate.not_before, certificate.not_after, activate_at, now)
    before = certificate.activate_at
    certificate.activate_at = max(activate_at, now)
    audit.record(
        session,
        actor,
        "certificate.rescheduled",
        object_type="partner",
        object_id=certificate.partner_id,
        summary=f"Moved certificate {short_fingerprint(certificate.sha256)} from "
        f"{before:%Y-%m-%d %H:%M} to {certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={"certificate_id": certificate.id},
    )
    webhooks.emit(
        session, WebhookEvent.CERTIFICATE_SCHEDULED,
        webhooks.certificate_event(certificate, rescheduled_from=before.isoformat()), now=now,
    )  # fmt: skip
    windows.agree_windows_at(
        session, actor, [certificate.partner_id], certificate,
        because=f"moving certificate {short_fingerprint(certificate.sha256)} to that time",
        now=now,
    )  # fmt: skip
