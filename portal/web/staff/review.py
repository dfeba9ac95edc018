"""Staff views for the approval queue and for scheduling, cancelling and rolling back."""

from __future__ import annotations

from datetime import datetime

from flask import Response, abort, flash, redirect, render_template, request, url_for

from portal.clock import request_now
from portal.domain.certs import MAX_INPUT_BYTES, short_fingerprint
from portal.domain.roles import Permission
from portal.extensions import db
from portal.models import Certificate, Submission
from portal.services import approvals, certificates, directory, inforce, schedule, submissions
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.web.access import current_actor, requires
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import (
    ConfirmForm,
    ReasonForm,
    StaffUploadForm,
    WhenForm,
    chosen_moment,
)
from portal.web.staff.pages import (
    Rendered,
    agreed_window,
    render_certificate_page,
    render_partner_page,
)


@bp.get("/submissions/<id:submission_id>")
@requires(Permission.VIEW)
def submission_view(submission_id: int) -> Rendered:
    """One submission: findings, comparison with the certificate in force, decision forms."""
    submission = submissions.get_submission(db.session, submission_id)
    return _review_page(submission, WhenForm(prefix="approve"), ReasonForm(prefix="reject"))


@bp.post("/submissions/<id:submission_id>/approve")
@requires(Permission.APPROVE)
def submission_approve(submission_id: int) -> Rendered:
    """Approve with an activation time."""
    submission = submissions.get_submission(db.session, submission_id)
    form = WhenForm(prefix="approve")
    now = request_now()
    four_eyes = settings().four_eyes_always
    if form.validate_on_submit():
        confirming = four_eyes and submission.first_approved_by_id is not None
        moment = now if confirming else chosen_moment(form, _proposal(submission), now)
        if moment is not None:
            try:
                certificate = approvals.approve_submission(
                    db.session, current_actor(), submission, activate_at=moment, now=now,
                    four_eyes_always=four_eyes,
                )  # fmt: skip
            except ServiceError as error:
                form.form_errors.append(error.message)
            else:
                if certificate is None:
                    flash("First approval recorded; a second approver must confirm it.", "info")
                else:
                    flash(
                        f"Approved. {submission.partner.name}'s certificate is in force from "
                        f"{certificate.activate_at:%Y-%m-%d %H:%M} UTC.",
                        "success",
                    )
                return redirect(url_for("staff.submissions_list"))
    return _review_page(submission, form, ReasonForm(prefix="reject"), status=422)


@bp.post("/submissions/<id:submission_id>/reject")
@requires(Permission.APPROVE)
def submission_reject(submission_id: int) -> Rendered:
    """Reject with a reason the partner reads."""
    submission = submissions.get_submission(db.session, submission_id)
    form = ReasonForm(prefix="reject")
    if form.validate_on_submit():
        try:
            approvals.reject_submission(
                db.session,
                current_actor(),
                submission,
                reason=form.reason.data or "",
                now=request_now(),
            )
        except ServiceError as error:
            form.form_errors.append(error.message)
        else:
            flash(f"Rejected; {submission.partner.name} sees the reason on their link.", "success")
            return redirect(url_for("staff.submissions_list"))
    return _review_page(submission, WhenForm(prefix="approve"), form, status=422)


@bp.post("/certificates/<id:certificate_id>/schedule")
@requires(Permission.MANAGE_PARTNERS)
def certificate_schedule(certificate_id: int) -> Rendered:
    """Propose when our certificate takes effect (another person approves)."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    form = WhenForm(prefix="schedule")
    now = request_now()
    if form.validate_on_submit():
        window = agreed_window(certificate)
        moment = chosen_moment(form, window, now)
        if moment is not None:
            try:
                schedule.schedule_identity_certificate(
                    db.session, current_actor(), certificate, activate_at=moment, now=now
                )
            except ServiceError as error:
                form.form_errors.append(error.message)
            else:
                flash("Schedule proposed; a second person must approve it.", "success")
                return _back(certificate)
    return _certificate_page(certificate, schedule_form=form)


@bp.post("/certificates/<id:certificate_id>/approve-schedule")
@requires(Permission.APPROVE)
def certificate_approve_schedule(certificate_id: int) -> Rendered:
    """The second person approves a proposed schedule of our certificate."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        expected = datetime.fromisoformat(request.form.get("expected", ""))
    except ValueError:
        flash("Open the certificate page and approve the time it shows.", "error")
        return _certificate_page(certificate)
    try:
        schedule.approve_identity_schedule(
            db.session, current_actor(), certificate, now=request_now(), expected=expected
        )
    except ServiceError as error:
        flash(error.message, "error")
        return _certificate_page(certificate)
    flash(f"Approved: in force from {certificate.activate_at:%Y-%m-%d %H:%M} UTC.", "success")
    return _back(certificate)


@bp.post("/certificates/<id:certificate_id>/reschedule")
@requires(Permission.APPROVE)
def certificate_reschedule(certificate_id: int) -> Rendered:
    """Move a partner certificate's activation before it takes effect."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    form = WhenForm(prefix="reschedule")
    now = request_now()
    if form.validate_on_submit():
        moment = chosen_moment(form, None, now)
        if moment is not None:
            try:
                schedule.reschedule_partner_certificate(
                    db.session, current_actor(), certificate, activate_at=moment, now=now
                )
            except ServiceError as error:
                form.form_errors.append(error.message)
            else:
                flash("Rescheduled.", "success")
                return _back(certificate)
    return _certificate_page(certificate, reschedule_form=form)


@bp.post("/certificates/<id:certificate_id>/cancel")
@requires(Permission.APPROVE)
def certificate_cancel(certificate_id: int) -> Rendered:
    """Withdraw a scheduled certificate before it takes effect."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    form = ReasonForm(prefix="cancel")
    if form.validate_on_submit():
        try:
            schedule.cancel_schedule(
                db.session, current_actor(), certificate, reason=form.reason.data or "",
                now=request_now(),
            )  # fmt: skip
        except ServiceError as error:
            form.form_errors.append(error.message)
        else:
            flash("Cancelled: this certificate will not take effect.", "success")
            return _back(certificate)
    return _certificate_page(certificate, cancel_form=form)


@bp.post("/certificates/<id:certificate_id>/rollback")
@requires(Permission.APPROVE)
def certificate_rollback(certificate_id: int) -> Rendered:
    """During the overlap, go back to the previous certificate."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    form = ReasonForm(prefix="rollback")
    if form.validate_on_submit():
        try:
            previous = schedule.rollback(
                db.session,
                current_actor(),
                certificate,
                inforce.owner_certificates(db.session, inforce.Owner.of(certificate)),
                reason=form.reason.data or "",
                now=request_now(),
                rules=schedule.Rules(overlap=settings().certificate_overlap),
            )
        except ServiceError as error:
            form.form_errors.append(error.message)
        else:
            flash(
                f"Rolled back: certificate {short_fingerprint(previous.sha256)} is in force again.",
                "success",
            )
            return _back(certificate)
    return _certificate_page(certificate, rollback_form=form)


@bp.post("/partners/<id:partner_id>/certificates")
@requires(Permission.MANAGE_PARTNERS)
def partner_certificate_upload(partner_id: int) -> Rendered:
    """Upload a certificate the partner sent by email; another person approves it."""
    partner = directory.get_partner(db.session, partner_id)
    form = StaffUploadForm(prefix="upload")
    if form.validate_on_submit():
        data = form.certificate.data.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            form.certificate.errors = [f"The file is larger than {MAX_INPUT_BYTES // 1024} KiB."]
        else:
            try:
                outcome = submissions.submit_by_staff(
                    db.session, current_actor(), partner, data=data,
                    usage=form.usage.data or "both", now=request_now(),
                    overlap=settings().certificate_overlap,
                    confirm_warnings=bool(form.confirm_warnings.data),
                )  # fmt: skip
            except ServiceError as error:
                form.form_errors.append(error.message)
            else:
                if outcome.submission is not None:
                    flash(
                        f"Recorded as submission #{outcome.submission.id}"
                        + (" (already received)" if outcome.duplicate else "")
                        + "; a different person must approve it.",
                        "success",
                    )
                    return redirect(
                        url_for("staff.submission_view", submission_id=outcome.submission.id)
                    )
                form.form_errors.extend(
                    f.message
                    for f in (outcome.report.errors if outcome.refused else outcome.report.warnings)
                )
                if outcome.needs_confirmation:
                    form.form_errors.append("Tick the box to accept it despite the warnings.")
    return render_partner_page(partner, now=request_now(), upload_form=form, status=422)


def _proposal(submission: Submission) -> datetime | None:
    return submissions.proposed_windows(db.session, [submission]).get(submission.id)


def _review_page(
    submission: Submission, approve_form: WhenForm, reject_form: ReasonForm, status: int = 200
) -> tuple[str, int]:
    now = request_now()
    proposal = _proposal(submission)
    if proposal is not None and not approve_form.is_submitted():
        approve_form.when.data = "proposal"
    comparison = approvals.compare_with_current(
        db.session, submission.partner_id, submission.usage, submission.der, now=now,
        overlap=settings().certificate_overlap,
    )  # fmt: skip
    return render_template(
        "staff/submission.html",
        four_eyes=settings().four_eyes_always,
        submission=submission,
        partner=submission.partner,
        report=submission.report,
        chain=certificates.chain_details(submission.chain_pem),
        now=now,
        comparison=comparison,
        proposal=proposal,
        approve_form=approve_form,
        reject_form=reject_form,
    ), status


def _certificate_page(certificate: Certificate, **forms: object) -> tuple[str, int]:
    return render_certificate_page(certificate, now=request_now(), status=422, **forms)


def _back(certificate: Certificate) -> Response:
    return redirect(url_for("staff.certificate_view", certificate_id=certificate.id))
