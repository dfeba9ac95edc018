"""Four eyes on our identity certificates: one person proposes the time, a different
approver approves it, on the web and on the command line.
"""

from __future__ import annotations

from datetime import timedelta

from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import Certificate, Identity
from portal.timeutil import utcnow
from tests import factories
from tests.schedulehelpers import (
    events,
    iso_z,
    minute,
    text_of,
    when_fields,
)


def test_our_schedule_needs_a_second_person_on_the_web(
    session, make_user, login, approver, approver_client
) -> None:
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    proposer = make_user("admin")  # may propose and approve, but not both for one schedule
    proposer_client = login(proposer)
    at = minute(utcnow() + timedelta(days=2))

    proposed = proposer_client.post(
        f"/certificates/{certificate.id}/schedule",
        data=when_fields("schedule", at, "Europe/Berlin"),
    )
    assert proposed.status_code == 302, text_of(proposed)
    assert certificate.proposed_activate_at == at
    assert certificate.proposed_by_id == proposer.id
    assert certificate.activate_at is None
    assert events(session, "certificate.schedule_proposed", certificate_id=certificate.id)

    seen = {"expected": at.isoformat()}  # the proposed time the page showed
    own = proposer_client.post(f"/certificates/{certificate.id}/approve-schedule", data=seen)
    assert "A different person must approve this schedule (four eyes)." in text_of(own)
    assert certificate.activate_at is None
    assert certificate.proposed_activate_at == at

    operator_client = login(make_user("operator"))
    assert operator_client.post(f"/certificates/{certificate.id}/approve-schedule").status_code == (
        403
    )
    assert certificate.activate_at is None

    stale = approver_client.post(
        f"/certificates/{certificate.id}/approve-schedule",
        data={"expected": (at + timedelta(hours=1)).isoformat()},
    )
    assert "The proposed time changed while you looked" in text_of(stale)
    assert certificate.activate_at is None
    second = approver_client.post(f"/certificates/{certificate.id}/approve-schedule", data=seen)
    assert second.status_code == 302, text_of(second)
    assert certificate.activate_at == at
    assert certificate.proposed_activate_at is None
    assert certificate.approved_by_id == approver.id
    (event,) = events(session, "certificate.scheduled", certificate_id=certificate.id)
    assert event.actor_id == approver.id


def schedule_command(identity: Identity, certificate: Certificate, at: str, email: str) -> list:
    return [
        "identity",
        "schedule",
        "--as2-id",
        identity.as2_id,
        "--certificate",
        colon_fingerprint(certificate.sha256),
        "--activate-at",
        at,
        "--as",
        email,
    ]


def test_our_schedule_needs_a_second_person_on_the_command_line(session, runner, make_user) -> None:
    # Operators propose (as on the web), approvers approve.
    first, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    session.commit()  # the command shares this session; a refusal rolls back only its own work
    at = (utcnow() + timedelta(days=3)).replace(microsecond=0)

    proposed = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), first.email))
    assert proposed.exit_code == 0, proposed.output
    assert proposed.stdout.startswith("Proposed")
    assert certificate.proposed_activate_at == at
    assert certificate.activate_at is None

    again = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), first.email))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("Proposed")
    assert "Approved" not in again.output
    assert certificate.activate_at is None

    approved = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), second.email))
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.startswith("Approved")
    assert certificate.activate_at == at
    assert certificate.approved_by_id == second.id


def test_a_viewer_cannot_approve_our_schedule_on_the_command_line(
    session, runner, make_user
) -> None:
    proposer, viewer = make_user("admin"), make_user("viewer")
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    session.commit()
    at = iso_z(utcnow() + timedelta(days=3))
    assert (
        runner.invoke(args=schedule_command(identity, certificate, at, proposer.email)).exit_code
        == 0
    )
    result = runner.invoke(args=schedule_command(identity, certificate, at, viewer.email))
    assert result.exit_code == 1, result.output
    assert certificate.activate_at is None
