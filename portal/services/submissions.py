"""Partner certificate submissions: judged by the toolkit, stored only when acceptable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from portal.domain import certs
from portal.domain.certs import Report, Usage, colon_fingerprint, sha256_hex
from portal.domain.roles import Permission, role_allows
from portal.domain.vocab import SubmissionStatus, WebhookEvent, usage_words, values_of
from portal.models import (
    ChangeWindow,
    Partner,
    ShareLink,
    Submission,
    User,
)
from portal.services import audit, emails, inforce, links, webhooks, windows
from portal.services.actor import Actor
from portal.services.certificates import requested_usage
from portal.services.errors import (
    LinkClosedError,
    LinkGoneError,
    LinkUsedUpError,
    NotFoundError,
    ServiceError,
)
from portal.services.pagination import Page, like_pattern, paginate


@dataclass(frozen=True)
class Outcome:
    """What happened to one upload."""

    report: Report
    submission: Submission | None = None
    duplicate: bool = False
    needs_confirmation: bool = False

    @property
    def refused(self) -> bool:
        """The file was not acceptable and nothing was stored."""
        return not self.report.acceptable


def submit_via_link(
    session: Session,
    actor: Actor,
    link: ShareLink,
    *,
    data: bytes,
    usage: str,
    now: datetime,
    overlap: timedelta,
    confirm_warnings: bool,
    proposed_window_start: datetime | None = None,
    proposed_timezone: str | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
) -> Outcome:
    """Judge an upload and, when acceptable (and warnings confirmed), store it as received.

    Only a stored submission uses up one of the link's uploads; a refused file, a file
    awaiting confirmation or a repeat of an earlier submission uses none.
    """
    usage_ = requested_usage(usage)
    # Uploads through one link take turns (row lock on PostgreSQL, write lock on SQLite),
    # so a double submit cannot store the same certificate twice.
    _lock_link(session, link)
    _check_link_open(link, now)
    report = _judge(session, link.partner_id, data, usage_, now=now, overlap=overlap)
    if not report.acceptable:
        _audit_refused(session, actor, link, report)
        return Outcome(report)
    held_back = _held_back(session, link.partner_id, report, usage_, confirm_warnings)
    if held_back is not None:
        return held_back
    _use_one_upload(session, link, now)
    submission = _add_submission(
        session,
        report,
        usage_,
        partner_id=link.partner_id,
        now=now,
        link_id=link.id,
        proposed_window_start=proposed_window_start,
        proposed_timezone=proposed_timezone if proposed_window_start else None,
        contact_name=contact_name or None,
        contact_email=contact_email or None,
    )
    _audit_received(session, actor, link, submission)
    if submission.proposed_window_start is not None:
        _propose_window_sent_with(session, actor, link, submission, now=now)
    _announce_received(session, submission, via="link", now=now)
    return Outcome(report, submission)


def _announce_received(
    session: Session, submission: Submission, *, via: str, now: datetime
) -> None:
    """Email the approvers and tell webhooks (VIA: a link, or staff on the partner's behalf)."""
    _notify_approvers(session, submission)
    webhooks.emit(
        session, WebhookEvent.SUBMISSION_RECEIVED,
        webhooks.submission_event(submission, received_via=via), now=now,
    )  # fmt: skip


def _propose_window_sent_with(
    session: Session, actor: Actor, link: ShareLink, submission: Submission, *, now: datetime
) -> None:
    """A change window sent with an upload is the partner's proposal, as on the link page."""
    assert submission.proposed_window_start is not None  # noqa: S101  (checked by the caller)
    windows.propose_window(
        session,
        actor,
        link,
        starts_at=submission.proposed_window_start,
        timezone=submission.proposed_timezone or "UTC",
        contact_name=submission.contact_name,
        contact_email=submission.contact_email,
        now=now,
    )


def _held_back(
    session: Session, partner_id: int, report: Report, usage: Usage, confirm_warnings: bool
) -> Outcome | None:
    """The outcome when an acceptable file is not stored: a repeat, or warnings unconfirmed."""
    assert report.certificate is not None  # noqa: S101  (an acceptable report has one)
    sha256 = sha256_hex(report.certificate.fingerprint_sha256)
    earlier = _open_submission(session, partner_id, sha256, str(usage))
    if earlier is not None:
        return Outcome(report, earlier, duplicate=True)
    if report.warnings and not confirm_warnings:
        return Outcome(report, needs_confirmation=True)
    return None


def _use_one_upload(session: Session, link: ShareLink, now: datetime) -> None:
    """Count one upload against LINK; LinkClosedError when it has none left."""
    if not links.consume_upload(session, link, now):
        _check_link_open(link, now)
        raise LinkUsedUpError(
            "This link has no uploads left. Ask us for a new link if you need to send another."
        )


def _add_submission(
    session: Session,
    report: Report,
    usage: Usage,
    *,
    partner_id: int,
    now: datetime,
    **fields: object,
) -> Submission:
    """Store the acceptable certificate of REPORT as received; FIELDS say who sent it and how."""
    assert report.certificate is not None  # noqa: S101  (an acceptable report has one)
    submission = Submission(
        partner_id=partner_id,
        usage=str(usage),
        der=report.certificate.der,
        chain_pem="".join(ca.pem() for ca in report.intermediates),
        sha256=sha256_hex(report.certificate.fingerprint_sha256),
        report=report.to_dict(),
        status=SubmissionStatus.RECEIVED.value,
        created_at=now,
        **fields,
    )
    session.add(submission)
    session.flush()
    return submission


def get_submission(session: Session, submission_id: int) -> Submission:
    """The submission with SUBMISSION_ID, or NotFoundError."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFoundError(f"No submission {submission_id}.")
    return submission


def list_submissions(
    session: Session, *, status: str | None, page: int, per_page: int, query: str = ""
) -> Page[Submission]:
    """Submissions, newest first, optionally of one status and partner (name or AS2 ID)."""
    stmt = (
        select(Submission)
        .join(Submission.partner)
        .options(selectinload(Submission.partner))
        .order_by(Submission.id.desc())
    )
    if query.strip():
        pattern = like_pattern(query.strip())
        stmt = stmt.where(
            or_(
                Partner.name.ilike(pattern, escape="\\"), Partner.as2_id.ilike(pattern, escape="\\")
            )
        )
    if status:
        if status not in values_of(SubmissionStatus):
            raise ServiceError(f"Status must be one of {', '.join(values_of(SubmissionStatus))}.")
        stmt = stmt.where(Submission.status == status)
    return paginate(session, stmt, page=page, per_page=per_page)


def proposed_windows(session: Session, items: list[Submission]) -> dict[int, datetime]:
    """The change window to show with each submission, by submission id (absent: none).

    The window proposed with the upload, else the partner's current window (the newest
    not superseded), which is how most partners propose one: on their link page.
    """
    partner_ids = {s.partner_id for s in items if s.proposed_window_start is None}
    current: dict[int, datetime] = {}
    if partner_ids:
        for window in session.scalars(
            select(ChangeWindow)
            .where(ChangeWindow.partner_id.in_(partner_ids), ChangeWindow.status != "superseded")
            .order_by(ChangeWindow.id)
        ):
            current[window.partner_id] = window.starts_at  # the newest wins
    found: dict[int, datetime] = {}
    for submission in items:
        moment = submission.proposed_window_start or current.get(submission.partner_id)
        if moment is not None:
            found[submission.id] = moment
    return found


def _judge(
    session: Session, partner_id: int, data: bytes, usage: Usage, *, now: datetime,
    overlap: timedelta,
) -> Report:  # fmt: skip
    """The toolkit's report, compared with the partner's certificate in force."""
    current = inforce.certificate_in_force(
        session, inforce.Owner(partner_id=partner_id), str(usage), now=now, overlap=overlap
    )
    current_sha256 = colon_fingerprint(current.sha256) if current is not None else None
    return certs.inspect(data, usage=usage, now=now, current_sha256=current_sha256)


def _check_link_open(link: ShareLink, now: datetime) -> None:
    if not link.can_upload:
        raise LinkClosedError("This link is for downloading only; it does not accept uploads.")
    state = links.link_state(link, now)
    if state is not links.LinkState.ACTIVE:
        raise LinkGoneError(f"This link is {state.value}; it no longer accepts uploads.")


def _open_submission(
    session: Session, partner_id: int, sha256: str, usage: str
) -> Submission | None:
    return session.scalar(
        select(Submission).where(
            Submission.partner_id == partner_id,
            Submission.sha256 == sha256,
            Submission.usage == usage,
            Submission.status.in_((SubmissionStatus.RECEIVED, SubmissionStatus.APPROVED)),
        )
    )


def _audit_refused(session: Session, actor: Actor, link: ShareLink, report: Report) -> None:
    fingerprint = report.certificate.fingerprint_sha256 if report.certificate else None
    audit.record(
        session,
        actor,
        "submission.refused",
        object_type="partner",
        object_id=link.partner_id,
        summary="Refused an upload: " + ", ".join(str(f.code) for f in report.errors),
        details={
            "link_id": link.id,
            "codes": [str(f.code) for f in report.errors],
            "fingerprint_sha256": fingerprint,
        },
    )


def _lock_link(session: Session, link: ShareLink) -> None:
    """Lock LINK's row and read it afresh (FOR UPDATE; SQLite's write lock serialises anyway).

    A plain select, not a refresh: a refresh repeats the options LINK was loaded with, and
    the partner page loads it joined to its partner's identity, an outer join PostgreSQL
    cannot lock.
    """
    session.execute(
        select(ShareLink)
        .where(ShareLink.id == link.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _audit_received(session: Session, actor: Actor, link: ShareLink, sub: Submission) -> None:
    audit.record(
        session,
        actor,
        "submission.received",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Received submission #{sub.id} ({usage_words(sub.usage)}): SHA-256 "
        f"{colon_fingerprint(sub.sha256)}",
        details={"link_id": link.id, "submission_id": sub.id, "sha256": sub.sha256},
    )


def _notify_approvers(session: Session, submission: Submission) -> None:
    approvers = [
        user.email
        for user in session.scalars(select(User).where(User.is_enabled.is_(True)))
        if role_allows(user.role, Permission.APPROVE)
    ]
    emails.queue(
        session, "submission_received", recipients=approvers,
        dedupe_key=f"submission-received:{submission.id}", submission=submission,
    )  # fmt: skip


def submit_by_staff(
    session: Session,
    actor: Actor,
    partner: Partner,
    *,
    data: bytes,
    usage: str,
    now: datetime,
    overlap: timedelta,
    confirm_warnings: bool,
) -> Outcome:
    """Record a certificate a partner sent by email; a different person must approve it."""
    if actor.user_id is None:
        raise ServiceError("A staff member must be named as the uploader.")
    usage_ = requested_usage(usage)
    report = _judge(session, partner.id, data, usage_, now=now, overlap=overlap)
    if not report.acceptable:
        return Outcome(report)
    held_back = _held_back(session, partner.id, report, usage_, confirm_warnings)
    if held_back is not None:
        return held_back
    submission = _add_submission(
        session, report, usage_, partner_id=partner.id, now=now, submitted_by_id=actor.user_id
    )
    audit.record(
        session,
        actor,
        "submission.received",
        object_type="partner",
        object_id=partner.id,
        summary=f"Uploaded submission #{submission.id} ({usage_words(submission.usage)}) on "
        "the partner's "
        f"behalf: SHA-256 {colon_fingerprint(submission.sha256)}",
        details={"submission_id": submission.id, "sha256": submission.sha256, "on_behalf": True},
    )
    _announce_received(session, submission, via="staff", now=now)
    return Outcome(report, submission)
