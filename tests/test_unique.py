"""A row the database refuses (a twin written concurrently, say) is a conflict, not a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.domain import certs
from portal.models import Identity
from portal.services import approvals, unique
from portal.services.actor import Actor
from portal.services.certificates import certificate_row
from portal.services.errors import ConflictError
from portal.timeutil import utcnow
from tests import factories


def twin_of(identity: Identity) -> Identity:
    return Identity(
        name="Twin", as2_id=identity.as2_id, environment=identity.environment, organisation="X"
    )


def test_a_refused_row_is_undone_alone_and_the_transaction_goes_on(session) -> None:
    first = factories.identity(session)
    twin = twin_of(first)

    assert unique.try_add(session, twin) is False

    assert twin not in session
    assert session.get(Identity, first.id) is first  # earlier work in the transaction is kept
    other = Identity(name="Other", as2_id=f"{first.as2_id}X", organisation="X")
    assert unique.try_add(session, other) is True
    assert session.scalar(select(Identity).where(Identity.id == other.id)) is other


def test_add_or_conflict_says_what_clashed_and_where(session) -> None:
    twin = twin_of(factories.identity(session))

    with pytest.raises(ConflictError) as refused:
        unique.add_or_conflict(session, twin, "That AS2 ID is taken.", field="as2_id")

    assert (refused.value.message, refused.value.field) == ("That AS2 ID is taken.", "as2_id")


def test_approving_a_certificate_the_partner_already_has_is_a_conflict(session, make_user) -> None:
    submission = factories.submission(
        session, factories.share_link(session, factories.partner(session))
    )
    withdrawn = certificate_row(
        certs.certificate_info(submission.der),
        partner_id=submission.partner_id,
        usage=submission.usage,
        source="uploaded",
        withdrawn_at=utcnow(),
    )
    session.add(withdrawn)
    session.flush()
    now = utcnow()

    with pytest.raises(ConflictError, match="already has this certificate"):
        approvals.approve_submission(
            session, Actor.for_user(make_user("approver")), submission, activate_at=now, now=now
        )

    assert submission.status == "received"
