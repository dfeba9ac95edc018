"""Approving partner certificates and scheduling ours: when each certificate takes effect.

Activation itself is derived from activate_at (portal.domain.inforce); these functions
only decide activate_at, withdraw certificates, and leave a trace in the audit trail
and the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.domain import certs
from portal.domain.inforce import InForce, in_force
from portal.models import Certificate, Submission
from portal.services import audit, emails, outbox, unique, windows
from portal.services.actor import Actor
from portal.services.certificates import certificate_row, colon_fingerprint
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


def approve_submission(
    session: Session,
    actor: Actor,
    submission: Submission,
    *,
    activate_at: datetime,
    now: datetime,
    four_eyes_always: bool = False,
) -> Certificate | None:
    """Accept a received submission as the partner's certificate from ACTIVATE_AT.

    With FOUR_EYES_ALWAYS the first approval only records the decision (returns None);
    a second, different approver confirms it at the time the first one chose.
    """
    _lock(session, submission)
    if submission.status != "received":
        raise ServiceError(f"Submission #{submission.id} is {submission.status}, not received.")
    _four_eyes(actor, submission.submitted_by_id, what="this submission")
    info = certs.certificate_info(submission.der)
    if four_eyes_always:
        confirmed = _second_approval_time(session, actor, submission, info, activate_at, now)
        if confirmed is None:
            return None
        activate_at = confirmed
    check_activation_time(info.not_before, info.not_after, activate_at, now)
    certificate = _add_approved_certificate(
        session, actor, submission, info, activate_at=max(activate_at, now), now=now
    )
    _record_approval(session, actor, submission, certificate, now=now)
    _tell_partner_approved(session, submission, certificate)
    return certificate


def _second_approval_time(
    session: Session,
    actor: Actor,
    submission: Submission,
    info: certs.CertificateInfo,
    activate_at: datetime,
    now: datetime,
) -> datetime | None:
    """Four eyes always: record a first approval (None), or the time a second one confirms."""
    if submission.first_approved_by_id is None:
        check_activation_time(info.not_before, info.not_after, activate_at, now)
        _record_first_approval(session, actor, submission, max(activate_at, now))
        return None
    if submission.first_approved_by_id == actor.user_id:
        raise ServiceError("You gave the first approval; a different person must give the second.")
    assert submission.first_approved_activate_at is not None  # noqa: S101  (set together)
    return max(submission.first_approved_activate_at, now)


def _add_approved_certificate(
    session: Session,
    actor: Actor,
    submission: Submission,
    info: certs.CertificateInfo,
    *,
    activate_at: datetime,
    now: datetime,
) -> Certificate:
    """The partner's new certificate, in force from ACTIVATE_AT; a repeat is a ConflictError."""
    certificate = certificate_row(
        info,
        partner_id=submission.partner_id,
        usage=submission.usage,
        source="staff" if submission.submitted_by_id else "uploaded",
        activate_at=activate_at,
        approved_by_id=actor.user_id,
        approved_at=now,
        created_by_id=submission.submitted_by_id,
    )
    unique.add_or_conflict(
        session,
        certificate,
        "This partner already has this certificate for this usage (perhaps withdrawn); "
        "ask the partner for a new one.",
    )
    return certificate


def _record_approval(
    session: Session,
    actor: Actor,
    submission: Submission,
    certificate: Certificate,
    *,
    now: datetime,
) -> None:
    """Mark SUBMISSION approved, audit it, and agree a partner window at that time."""
    submission.status = "approved"
    submission.reviewed_by_id = actor.user_id
    submission.reviewed_at = now
    submission.certificate_id = certificate.id
    audit.record(
        session,
        actor,
        "submission.approved",
        object_type="partner",
        object_id=submission.partner_id,
        summary=f"Approved submission #{submission.id}, in force from "
        f"{certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={
            "submission_id": submission.id,
            "certificate_id": certificate.id,
            "activate_at": certificate.activate_at.isoformat() if certificate.activate_at else "",
        },
    )
    _agree_windows_at(
        session, actor, [submission.partner_id], certificate,
        because=f"approving submission #{submission.id} at that time", now=now,
    )  # fmt: skip


def _tell_partner_approved(
    session: Session, submission: Submission, certificate: Certificate
) -> None:
    email = emails.render("submission_approved", submission=submission, certificate=certificate)
    outbox.queue_email(
        session,
        recipients=submission.partner.contact_emails,
        subject=email.subject,
        body=email.body,
        dedupe_key=f"submission-approved:{submission.id}",
    )


def _record_first_approval(
    session: Session, actor: Actor, submission: Submission, activate_at: datetime
) -> None:
    submission.first_approved_by_id = actor.user_id
    submission.first_approved_activate_at = activate_at
    audit.record(
        session,
        actor,
        "submission.first_approval",
        object_type="partner",
        object_id=submission.partner_id,
        summary=f"First approval of submission #{submission.id} for "
        f"{activate_at:%Y-%m-%d %H:%M} UTC; a second approver must confirm",
        details={"submission_id": submission.id, "activate_at": activate_at.isoformat()},
    )


def reject_submission(
    session: Session, actor: Actor, submission: Submission, *, reason: str, now: datetime
) -> None:
    """Turn a received submission down with a reason the partner reads on their link page."""
    reason = reason.strip()
    if not reason:
        raise ServiceError("Give the partner a reason.", field="reason")
    if len(reason) > MAX_REASON:
        raise ServiceError(f"Keep the reason under {MAX_REASON} characters.", field="reason")
    _lock(session, submission)
    if submission.status != "received":
        raise ServiceError(f"Submission #{submission.id} is {submission.status}, not received.")
    submission.status = "rejected"
    submission.rejection_reason = reason
    submission.reviewed_by_id = actor.user_id
    submission.reviewed_at = now
    audit.record(
        session,
        actor,
        "submission.rejected",
        object_type="partner",
        object_id=submission.partner_id,
        summary=f"Rejected submission #{submission.id}: {reason[:200]}",
        details={"submission_id": submission.id, "reason": reason},
    )
    email = emails.render("submission_rejected", submission=submission, reason=reason)
    outbox.queue_email(
        session,
        recipients=submission.partner.contact_emails,
        subject=email.subject,
        body=email.body,
        dedupe_key=f"submission-rejected:{submission.id}",
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
    _lock(session, certificate)
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
        summary=f"Proposed activating certificate {colon_fingerprint(certificate.sha256)[:23]}… "
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
    _lock(session, certificate)
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
        summary=f"Approved: certificate {colon_fingerprint(certificate.sha256)[:23]}… takes "
        f"effect at {certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={"certificate_id": certificate.id},
    )
    partners = certificate.identity.partners if certificate.identity else []
    _agree_windows_at(
        session, actor, [partner.id for partner in partners], certificate,
        because=f"approving our certificate {colon_fingerprint(certificate.sha256)[:23]}… "
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
    _lock(session, certificate)
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
    _lock(session, certificate)
    states = [
        in_force(siblings, usage, at=now, overlap=rules.overlap) for usage in _usages(certificate)
    ]
    if not all(state.active is certificate for state in states):
        raise ServiceError("Only the certificate in force can be rolled back.")
    previous = [state.previous for state in states if state.previous is not None]
    if not previous:
        raise ServiceError(
            "There is no previous certificate to go back to (none, or the overlap has ended)."
        )
    _withdraw(session, actor, certificate, reason=reason, now=now, action="certificate.rolled_back")
    return previous[0]


def owner_state(
    session: Session, certificate: Certificate, usage: str, *, now: datetime, overlap: timedelta
) -> InForce[Certificate]:
    """The in-force state of CERTIFICATE's owner for USAGE."""
    return in_force(owner_certificates(session, certificate), usage, at=now, overlap=overlap)


def owner_certificates(session: Session, certificate: Certificate) -> list[Certificate]:
    """All certificates of the same identity or partner."""
    if certificate.identity_id is not None:
        owner = Certificate.identity_id == certificate.identity_id
    else:
        owner = Certificate.partner_id == certificate.partner_id
    return list(session.scalars(select(Certificate).where(owner)))


def _usages(certificate: Certificate) -> tuple[str, ...]:
    return ("signing", "encryption") if certificate.usage == "both" else (certificate.usage,)


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
        f"{colon_fingerprint(certificate.sha256)[:23]}…: {reason[:200]}",
        details={"certificate_id": certificate.id, "reason": reason[:MAX_REASON]},
    )


def _agree_windows_at(
    session: Session,
    actor: Actor,
    partner_ids: list[int],
    certificate: Certificate,
    *,
    because: str,
    now: datetime,
) -> None:
    """Taking effect at a partner's proposed window agrees that window (for each partner)."""
    if certificate.activate_at is None:
        return
    for partner_id in partner_ids:
        windows.agree_partner_window_at(
            session, actor, partner_id, certificate.activate_at, now=now, because=because
        )


def _lock(session: Session, row: Certificate | Submission) -> None:
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


def _four_eyes(actor: Actor, submitter_id: int | None, *, what: str) -> None:
    if actor.user_id is None:
        raise ServiceError("Approvals need a person: name the approver (--as EMAIL).")
    if submitter_id is not None and submitter_id == actor.user_id:
        raise ServiceError(f"You uploaded {what}; a different person must approve it.")


def reschedule_partner_certificate(
    session: Session,
    actor: Actor,
    certificate: Certificate,
    *,
    activate_at: datetime,
    now: datetime,
) -> None:
    """Move a partner certificate's activation before it takes effect."""
    _lock(session, certificate)
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
        summary=f"Moved certificate {colon_fingerprint(certificate.sha256)[:23]}… from "
        f"{before:%Y-%m-%d %H:%M} to {certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={"certificate_id": certificate.id},
    )
    _agree_windows_at(
        session, actor, [certificate.partner_id], certificate,
        because=f"moving certificate {colon_fingerprint(certificate.sha256)[:23]}… to that time",
        now=now,
    )  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """How an offered certificate differs from the one in force."""

    current: Certificate | None
    same_key: bool
    subject_changed: bool
    issuer_changed: bool
    expiry_moved: timedelta | None


def compare_with_current(
    session: Session, partner_id: int, usage: str, der: bytes, *, now: datetime, overlap: timedelta
) -> Comparison:
    """Compare a submitted certificate with the partner's certificate in force for USAGE."""
    owned = list(session.scalars(select(Certificate).where(Certificate.partner_id == partner_id)))
    usages = ("signing", "encryption") if usage == "both" else (usage,)
    current = next(
        (
            state.active
            for state in (in_force(owned, u, at=now, overlap=overlap) for u in usages)
            if state.active is not None
        ),
        None,
    )
    offered = certs.certificate_info(der)
    if current is None:
        return Comparison(None, False, False, False, None)
    return Comparison(
        current=current,
        same_key=certs.public_key_der(der) == certs.public_key_der(current.der),
        subject_changed=offered.subject != current.subject,
        issuer_changed=offered.issuer != current.issuer,
        expiry_moved=offered.not_after - current.not_after,
    )
