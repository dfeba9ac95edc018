"""What approvers read: the review page compares a submission with the partner's
certificate in force; the list of submissions by status.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.models import User
from portal.services import approvals
from portal.timeutil import utcnow
from tests import certfactory, factories, linkhelpers
from tests.schedulehelpers import (
    actor,
    partner_cert,
    receive,
    share,
    text_of,
)


@pytest.fixture
def partner_in_force(session: Session, approver: User) -> dict[str, Any]:
    """A partner whose certificate (RSA 3072, 400 days) has been in force since now."""
    partner = factories.partner(session)
    link, _ = share(session, partner)
    current = receive(session, link)
    now = utcnow()
    certificate = approvals.approve_submission(
        session, actor(approver), current, activate_at=now, now=now
    )
    return {"partner": partner, "link": link, "current": certificate}


def test_review_page_shows_findings_and_comparison(
    session, approver_client, partner_in_force
) -> None:
    link, current = partner_in_force["link"], partner_in_force["current"]
    same_key_later = receive(session, link, partner_cert(days=430))
    response = approver_client.get(f"/submissions/{same_key_later.id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "No errors or warnings." in page
    assert "the same key is reused" in page
    assert "later by 30 days" in page
    assert colon_fingerprint(same_key_later.sha256) in page

    new_key_earlier = receive(session, link, partner_cert(key=certfactory.rsa_key(2048), days=390))
    page = text_of(approver_client.get(f"/submissions/{new_key_earlier.id}"))
    assert "rsa_2048" in page  # a warning the partner confirmed is shown to the approver
    assert "a new key" in page
    assert "the same key is reused" not in page
    assert "earlier by 10 days" in page
    assert current.subject in page


def test_review_page_without_a_certificate_in_force(session, approver_client, received) -> None:
    page = text_of(approver_client.get(f"/submissions/{received['submission'].id}"))
    assert "The partner has no certificate in force for this usage yet." in page


def test_review_page_counts_earlier_and_later_expiry_alike(
    session, approver_client, partner_in_force
) -> None:
    link, current = partner_in_force["link"], partner_in_force["current"]
    moved = timedelta(days=5, hours=2)
    later = receive(session, link, partner_cert(not_after=current.not_after + moved))
    earlier = receive(session, link, partner_cert(not_after=current.not_after - moved))
    assert "later by 5 days" in text_of(approver_client.get(f"/submissions/{later.id}"))
    assert "earlier by 5 days" in text_of(approver_client.get(f"/submissions/{earlier.id}"))


def test_submissions_list_shows_received_ones_and_empty_states(viewer_client, session) -> None:
    from portal.services import submissions

    shared = linkhelpers.share(session)
    cert = linkhelpers.partner_cert()
    outcome = submissions.submit_via_link(
        session,
        factories.ACTOR,
        shared.link,
        data=certfactory.pem(cert),
        usage="both",
        now=utcnow(),
        overlap=timedelta(days=7),
        confirm_warnings=True,
    )
    assert outcome.submission is not None

    page = viewer_client.get("/submissions").get_data(as_text=True)
    assert shared.partner.name in page
    assert colon_fingerprint(linkhelpers.sha256_of(cert))[:23] in page
    for status in ("received", "all"):
        listed = viewer_client.get(f"/submissions?status={status}").get_data(as_text=True)
        assert shared.partner.name in listed
    tabs = re.findall(r"submissions\?status=(\w+)", page)
    assert tabs == ["received", "approved", "rejected", "all"]
    rejected = viewer_client.get("/submissions?status=rejected").get_data(as_text=True)
    assert "No rejected submission." in rejected
    assert shared.partner.name not in rejected
