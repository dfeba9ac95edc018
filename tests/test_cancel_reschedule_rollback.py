"""Changing a schedule: cancel before activation, reschedule a partner certificate,
roll back during the overlap, and the refusals behind those buttons.

Time is never slept through: services take `now=`, views read the `clock` fixture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import Identity, User
from portal.services import approvals, config_export, schedule
from portal.services.errors import ServiceError
from portal.timeutil import utcnow
from tests import factories
from tests.schedulehelpers import (
    OVERLAP,
    actor,
    events,
    fingerprint,
    minute,
    receive,
    schedule_ours,
    share,
    signing_of,
    text_of,
    when_fields,
)


@pytest.fixture
def two_of_ours(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """Our identity: the old certificate in force since T0, the new one from T0 + 1 day."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity)
    new = factories.identity_certificate(session, keyring(), identity)
    t0 = utcnow()
    schedule_ours(session, old, t0, proposer=proposer, approver=second, now=t0)
    switch = t0 + timedelta(days=1)
    schedule_ours(session, new, switch, proposer=proposer, approver=second, now=t0)
    session.flush()
    return {"identity": identity, "old": old, "new": new, "t0": t0, "switch": switch}


def active_of(session: Session, identity: Identity, at: datetime) -> tuple[Any, Any]:
    document = config_export.config_document(session, at=at, overlap=OVERLAP)
    signing = signing_of(document, identity)
    return fingerprint(signing["active"]), fingerprint(signing["previous"])


def test_cancel_before_activation_withdraws_the_certificate(
    session, approver_client, two_of_ours
) -> None:
    identity, old, new = two_of_ours["identity"], two_of_ours["old"], two_of_ours["new"]
    later = two_of_ours["switch"] + timedelta(hours=1)
    assert active_of(session, identity, later)[0] == colon_fingerprint(new.sha256)

    response = approver_client.post(
        f"/certificates/{new.id}/cancel", data={"cancel-reason": "Partner not ready"}
    )
    assert response.status_code == 302, text_of(response)
    assert new.withdrawn_at is not None
    assert new.withdrawn_reason == "Partner not ready"
    assert events(session, "certificate.cancelled", certificate_id=new.id)
    assert active_of(session, identity, later) == (colon_fingerprint(old.sha256), None)
    document = config_export.config_document(session, at=later, overlap=OVERLAP)
    assert colon_fingerprint(new.sha256) not in json.dumps(document)


def test_reschedule_a_partner_certificate_before_activation(
    session, approver, approver_client
) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    now = utcnow()
    first = minute(now + timedelta(days=2))
    certificate = approvals.approve_submission(
        session, actor(approver), receive(session, link), activate_at=first, now=now
    )
    moved = minute(now + timedelta(days=4))
    response = approver_client.post(
        f"/certificates/{certificate.id}/reschedule",
        data=when_fields("reschedule", moved, "Europe/Berlin"),
    )
    assert response.status_code == 302, text_of(response)
    assert certificate.activate_at == moved
    (event,) = events(session, "certificate.rescheduled", certificate_id=certificate.id)
    assert event.actor_id == approver.id
    assert f"from {first:%Y-%m-%d %H:%M} to {moved:%Y-%m-%d %H:%M} UTC" in event.summary


def test_rollback_during_the_overlap_brings_the_previous_back(
    session, approver_client, two_of_ours, clock
) -> None:
    identity, old, new = two_of_ours["identity"], two_of_ours["old"], two_of_ours["new"]
    moment = two_of_ours["switch"] + timedelta(hours=1)  # the new one is in force since 1 hour
    assert active_of(session, identity, moment) == (
        colon_fingerprint(new.sha256),
        colon_fingerprint(old.sha256),
    )
    clock.set(moment)
    response = approver_client.post(
        f"/certificates/{new.id}/rollback", data={"rollback-reason": "Partner cannot verify"}
    )
    assert response.status_code == 302, text_of(response)
    assert new.withdrawn_at == moment
    assert new.withdrawn_reason == "Partner cannot verify"
    assert old.withdrawn_at is None
    (event,) = events(session, "certificate.rolled_back", certificate_id=new.id)
    assert event.details["reason"] == "Partner cannot verify"
    assert active_of(session, identity, moment) == (colon_fingerprint(old.sha256), None)
    later = active_of(session, identity, moment + timedelta(days=30))
    assert later == (colon_fingerprint(old.sha256), None)


def test_cancel_reschedule_and_rollback_refusals(session, approver, make_user, two_of_ours) -> None:
    """The rules behind the buttons, through the services (the pages are tested below)."""
    old, new, switch = two_of_ours["old"], two_of_ours["new"], two_of_ours["switch"]
    siblings = [old, new]
    rules = schedule.Rules(overlap=OVERLAP)
    after_switch = switch + timedelta(minutes=1)

    with pytest.raises(ServiceError, match="already in force; roll it back instead"):
        schedule.cancel_schedule(session, actor(approver), new, reason="too late", now=after_switch)
    with pytest.raises(ServiceError, match="Only the certificate in force"):
        schedule.rollback(
            session, actor(approver), old, siblings, reason="x", now=after_switch, rules=rules
        )
    with pytest.raises(ServiceError, match="no previous certificate"):
        schedule.rollback(
            session, actor(approver), new, siblings, reason="x",
            now=switch + OVERLAP + timedelta(hours=1), rules=rules,
        )  # fmt: skip
    with pytest.raises(ServiceError, match="Give a reason"):
        schedule.rollback(
            session, actor(approver), new, siblings, reason="  ", now=after_switch, rules=rules
        )
    assert new.withdrawn_at is None

    identity = factories.identity(session)
    only = factories.identity_certificate(session, keyring(), identity)
    now = utcnow()
    schedule_ours(session, only, now, proposer=make_user("operator"), approver=approver, now=now)
    with pytest.raises(ServiceError, match="no previous certificate"):
        schedule.rollback(session, actor(approver), only, [only], reason="x", now=now, rules=rules)
    assert only.withdrawn_at is None

    partner = factories.partner(session)
    link, _ = share(session, partner)
    theirs = approvals.approve_submission(
        session, actor(approver), receive(session, link), activate_at=now, now=now
    )
    with pytest.raises(ServiceError, match="already in force"):
        schedule.reschedule_partner_certificate(
            session, actor(approver), theirs, activate_at=now + timedelta(days=1),
            now=now + timedelta(minutes=1),
        )  # fmt: skip
    assert theirs.activate_at == now
    assert events(session, "certificate.cancelled") == []
    assert events(session, "certificate.rolled_back") == []


def test_certificate_page_of_a_scheduled_certificate(approver_client, two_of_ours, clock) -> None:
    new = two_of_ours["new"]
    clock.set(two_of_ours["switch"] + timedelta(hours=1))
    response = approver_client.get(f"/certificates/{new.id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "in force since" in page
    assert "Roll back" in page


REFUSALS = {
    "cancel after activation": ("cancel", "already in force; roll it back instead"),
    "reschedule after activation": ("reschedule", "already in force; roll it back instead"),
    "rollback after the overlap": ("rollback", "There is no previous certificate"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_certificate_actions_on_the_web(
    session, approver, approver_client, two_of_ours, clock, case
) -> None:
    action, message = REFUSALS[case]
    if action == "reschedule":
        link, _ = share(session, factories.partner(session))
        now = utcnow()
        target = approvals.approve_submission(
            session, actor(approver), receive(session, link), activate_at=now, now=now
        )
        clock.set(now + timedelta(minutes=1))
        data = when_fields("reschedule", now + timedelta(days=2))
    else:
        target = two_of_ours["new"]
        moment = two_of_ours["switch"] + timedelta(minutes=1)
        if action == "rollback":
            moment += OVERLAP
        clock.set(moment)
        data = {f"{action}-reason": "please"}
    before = target.activate_at
    response = approver_client.post(f"/certificates/{target.id}/{action}", data=data)
    assert response.status_code == 422
    assert target.withdrawn_at is None
    assert target.activate_at == before
    assert message in text_of(response)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("cancel", "This certificate is not scheduled."),
        ("rollback", "Only the certificate in force can be rolled back."),
    ],
)
def test_a_refused_cancel_or_rollback_says_why(session, approver_client, action, message):
    identity = factories.identity(session)
    pending = factories.identity_certificate(session, keyring(), identity)  # not scheduled
    response = approver_client.post(
        f"/certificates/{pending.id}/{action}", data={f"{action}-reason": "please"}
    )
    assert response.status_code == 422
    assert pending.withdrawn_at is None
    assert message in text_of(response)
