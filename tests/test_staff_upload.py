"""Staff record a certificate a partner sent by email; a different person must approve it."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select

from portal.models import AuditEvent, Certificate, Submission
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure


def upload(browser, partner, data: bytes, **fields):
    form = {"upload-certificate": (io.BytesIO(data), "partner.cer"), "upload-usage": "both"}
    form.update(fields)
    return browser.post(
        f"/partners/{partner.id}/certificates", data=form, content_type="multipart/form-data"
    )


def test_uploader_cannot_approve_but_someone_else_can(session, make_user, login) -> None:
    partner = factories.partner(session)
    uploader = make_user("admin")  # admins may both upload and approve: four eyes still applies
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key_size=3072)
    response = upload(login(uploader), partner, certfactory.der(cert))
    assert response.status_code == 302
    submission = session.scalars(select(Submission)).one()
    assert submission.submitted_by_id == uploader.id
    assert submission.link_id is None
    refused = login(uploader).post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert refused.status_code == 422
    assert "a different person must approve it" in refused.get_data(as_text=True)
    assert submission.status == "received"
    approved = login(make_user("approver")).post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert approved.status_code == 302
    session.refresh(submission)
    assert submission.status == "approved"
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "submission.received")
    ).one()
    assert event.details["on_behalf"] is True


def test_refused_and_warned_uploads(session, operator_client) -> None:
    partner = factories.partner(session)
    key_only = certfactory.key_bytes(certfactory.rsa_key(2048))
    refused = upload(operator_client, partner, key_only)
    assert refused.status_code == 422
    assert "private key" in refused.get_data(as_text=True)
    warned_cert, _ = certfactory.make_cert(now=utcnow(), days=400)  # RSA 2048: a warning
    warned = upload(operator_client, partner, certfactory.pem(warned_cert))
    assert warned.status_code == 422
    assert "Tick the box" in warned.get_data(as_text=True)
    assert session.scalar(select(Submission)) is None
    confirmed = upload(
        operator_client, partner, certfactory.pem(warned_cert), **{"upload-confirm_warnings": "y"}
    )
    assert confirmed.status_code == 302
    assert session.scalars(select(Submission)).one().usage == "both"


def test_viewer_cannot_upload(session, viewer_client) -> None:
    partner = factories.partner(session)
    cert, _ = certfactory.make_cert(now=utcnow(), days=400)
    assert upload(viewer_client, partner, certfactory.pem(cert)).status_code == 403


def test_four_eyes_for_every_approval(app, session, make_user, login) -> None:
    reconfigure(app, FOUR_EYES_ALWAYS=True)
    partner = factories.partner(session)
    link = factories.share_link(session, partner)
    submission = factories.submission(session, link)
    first, second = make_user("approver"), make_user("approver")
    day = (utcnow() + timedelta(days=30)).date()
    when = {"approve-when": "chosen", "approve-date": day.isoformat(), "approve-time": "09:30",
            "approve-timezone": "UTC"}  # fmt: skip
    response = login(first).post(f"/submissions/{submission.id}/approve", data=when)
    assert response.status_code == 302
    assert submission.status == "received"
    assert submission.first_approved_by_id == first.id
    page = login(second).get(f"/submissions/{submission.id}").get_data(as_text=True)
    assert "Confirm as second approver" in page
    again = login(first).post(f"/submissions/{submission.id}/approve", data={"approve-when": "now"})
    assert again.status_code == 422
    assert "a different person must give the second" in again.get_data(as_text=True)
    confirmed = login(second).post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert confirmed.status_code == 302
    assert submission.status == "approved"
    certificate = session.get(Certificate, submission.certificate_id)
    assert certificate.activate_at.isoformat() == f"{day.isoformat()}T09:30:00+00:00"  # first's


def test_four_eyes_for_every_approval_on_the_command_line(app, runner, session, make_user) -> None:
    reconfigure(app, FOUR_EYES_ALWAYS=True)
    partner = factories.partner(session)
    submission = factories.submission(session, factories.share_link(session, partner))
    first, second = make_user("approver"), make_user("admin")
    session.commit()
    args = ["submission", "approve", str(submission.id), "--activate-at", "now", "--as"]
    one = runner.invoke(args=[*args, first.email])
    assert one.exit_code == 0, one.output
    assert "First approval" in one.output
    same = runner.invoke(args=[*args, first.email])
    assert same.exit_code == 1
    two = runner.invoke(args=[*args, second.email])
    assert two.exit_code == 0, two.output
    assert "Approved submission" in two.output


def test_queue_filters_by_partner_and_status(session, viewer_client) -> None:
    for name in ("Alpha Freight", "Beta Goods"):
        partner = factories.partner(session, name=name)
        factories.submission(session, factories.share_link(session, partner))
    page = viewer_client.get("/submissions?q=alpha").get_data(as_text=True)
    assert "Alpha Freight" in page
    assert "Beta Goods" not in page
    assert "No rejected submission" in viewer_client.get("/submissions?status=rejected").get_data(
        as_text=True
    )
