"""Reviewing partner submissions: approve (with four eyes), reject, compare with what is in force.

Approving only decides the partner certificate's activate_at (portal.domain.inforce derives
the rest); it leaves a trace in the audit trail and the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from portal.domain import certs
from portal.domain.vocab import WebhookEvent
from portal.models import Certificate, Submission
from portal.services import audit, emails, inforce, unique, webhooks, windows
from portal.services.actor import Actor
from portal.services.certificates import certificate_row
from portal.services.errors import ServiceError
from portal.services.schedule import MAX_REASON, check_activation_time, lock


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
    lock(session, submission)
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
    _announce_approved(session, submission, certificate, now=now)
    return certificate


def _announce_approved(
    session: Session, submission: Submission, certificate: Certificate, *, now: datetime
) -> None:
    """Webhooks: the submission is approved, and its certificate scheduled."""
    webhooks.emit(
        session, WebhookEvent.SUBMISSION_APPROVED,
        webhooks.submission_event(submission, certificate=webhooks.certificate_data(certificate)),
        now=now,
    )  # fmt: skip
    webhooks.emit(
        session, WebhookEvent.CERTIFICATE_SCHEDULED, webhooks.certificate_event(certificate),
        now=now,
    )  # fmt: skip


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
        chain_pem=submission.chain_pem,
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
    windows.agree_windows_at(
        session, actor, [submission.partner_id], certificate,
        because=f"approving submission #{submission.id} at that time", now=now,
    )  # fmt: skip


def _tell_partner_approved(
    session: Session, submission: Submission, certificate: Certificate
) -> None:
    emails.queue(
        session, "submission_approved", recipients=submission.partner.contact_emails,
        dedupe_key=f"submission-approved:{submission.id}", submission=submission,
        certificate=certificate, language=submission.partner.language,
    )  # fmt: skip


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
    lock(session, submission)
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
    emails.queue(
        session, "submission_rejected", recipients=submission.partner.contact_emails,
        dedupe_key=f"submission-rejected:{submission.id}", submission=submission, reason=reason,
        language=submission.partner.language,
    )  # fmt: skip
    webhooks.emit(
        session, WebhookEvent.SUBMISSION_REJECTED,
        webhooks.submission_event(submission, reason=reason), now=now,
    )  # fmt: skip


def _four_eyes(actor: Actor, submitter_id: int | None, *, what: str) -> None:
    if actor.user_id is None:
        raise ServiceError("Approvals need a person: name the approver (--as EMAIL).")
    if submitter_id is not None and submitter_id == actor.user_id:
        raise ServiceError(f"You uploaded {what}; a different person must approve it.")


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
    current = inforce.certificate_in_force(
        session, inforce.Owner(partner_id=partner_id), usage, now=now, overlap=overlap
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
