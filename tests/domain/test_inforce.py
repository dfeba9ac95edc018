"""The in-force rule at its boundaries (no app)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.domain.inforce import in_force, in_force_by_usage
from portal.domain.vocab import usages_served

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OVERLAP = timedelta(days=7)
SECOND = timedelta(seconds=1)


@dataclass
class Cert:
    name: str
    usage: str = "both"
    activate_at: datetime | None = None
    withdrawn_at: datetime | None = None
    not_after: datetime = T0 + timedelta(days=700)


OLD = Cert("old", activate_at=T0 - timedelta(days=300))
NEW = Cert("new", activate_at=T0)


def test_one_second_before_activation_the_old_one_is_active() -> None:
    state = in_force([OLD, NEW], "signing", at=T0 - SECOND, overlap=OVERLAP)
    assert state.active is OLD
    assert state.scheduled == [NEW]
    assert state.previous is None


def test_at_and_after_activation_the_new_one_is_active_and_old_is_previous() -> None:
    for at in (T0, T0 + SECOND):
        state = in_force([OLD, NEW], "encryption", at=at, overlap=OVERLAP)
        assert state.active is NEW
        assert state.previous is OLD
        assert state.scheduled == []


def test_previous_ends_with_the_overlap() -> None:
    before_end = in_force([OLD, NEW], "signing", at=T0 + OVERLAP - SECOND, overlap=OVERLAP)
    at_end = in_force([OLD, NEW], "signing", at=T0 + OVERLAP, overlap=OVERLAP)
    assert before_end.previous is OLD
    assert at_end.previous is None
    assert at_end.active is NEW


def test_withdrawn_certificates_never_count() -> None:
    withdrawn = Cert("withdrawn", activate_at=T0, withdrawn_at=T0 + SECOND)
    state = in_force([OLD, withdrawn], "signing", at=T0 + timedelta(hours=1), overlap=OVERLAP)
    assert state.active is OLD
    assert state.previous is None


def test_usage_both_serves_each_usage_and_others_only_their_own() -> None:
    signing = Cert("signing", usage="signing", activate_at=T0)
    encryption = Cert("encryption", usage="encryption", activate_at=T0 - timedelta(days=1))
    states = in_force_by_usage([signing, encryption], at=T0, overlap=OVERLAP)
    assert states["signing"].active is signing
    assert states["encryption"].active is encryption


def test_pending_are_undated_and_unexpired() -> None:
    pending = Cert("pending")
    expired_pending = Cert("expired", not_after=T0 - SECOND)
    state = in_force([OLD, pending, expired_pending], "signing", at=T0, overlap=OVERLAP)
    assert state.pending == [pending]
    assert state.active is OLD


def test_nothing_at_all() -> None:
    state = in_force([], "signing", at=T0, overlap=OVERLAP)
    assert (state.active, state.previous, state.scheduled, state.pending) == (None, None, [], [])


def test_a_certificate_for_both_serves_each_usage() -> None:
    assert usages_served("both") == ("signing", "encryption")
    assert usages_served("signing") == ("signing",)
    assert usages_served("encryption") == ("encryption",)
