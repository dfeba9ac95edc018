"""The in-force rule at its boundaries (no app)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.domain.inforce import AcceptWindow, in_force, in_force_by_usage
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
    approved_at: datetime | None = None


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


def test_send_is_the_active_one_and_accept_adds_previous_and_scheduled_at_each_boundary() -> None:
    def names(at: datetime) -> tuple[str | None, list[str]]:
        state = in_force([OLD, NEW], "signing", at=at, overlap=OVERLAP)
        return (state.send.name if state.send else None), [c.name for c in state.accept]

    assert names(T0 - SECOND) == ("old", ["old", "new"])
    assert names(T0) == ("new", ["new", "old"])
    assert names(T0 + OVERLAP - SECOND) == ("new", ["new", "old"])
    assert names(T0 + OVERLAP) == ("new", ["new"])


def test_next_change_is_the_activation_then_the_end_of_the_overlap_then_none() -> None:
    def next_change(at: datetime) -> datetime | None:
        return in_force([OLD, NEW], "signing", at=at, overlap=OVERLAP).next_change_at

    assert next_change(T0 - SECOND) == T0
    assert next_change(T0) == T0 + OVERLAP
    assert next_change(T0 + OVERLAP - SECOND) == T0 + OVERLAP
    assert next_change(T0 + OVERLAP) is None


def test_next_change_is_a_second_activation_when_it_comes_before_the_overlap_ends() -> None:
    third = Cert("third", activate_at=T0 + timedelta(days=2))
    state = in_force([OLD, NEW, third], "signing", at=T0 + SECOND, overlap=OVERLAP)
    assert state.next_change_at == T0 + timedelta(days=2)
    later = in_force([OLD, NEW, third], "signing", at=third.activate_at, overlap=OVERLAP)
    assert [c.name for c in later.accept] == ["third", "new"]


def test_nothing_dated_means_nothing_to_send_accept_or_wait_for() -> None:
    pending = Cert("pending")
    state = in_force([pending], "signing", at=T0, overlap=OVERLAP)
    assert (state.send, state.accept, state.next_change_at) == (None, [], None)
    assert state.window(pending) == AcceptWindow(None, None)


def test_accept_window_runs_from_approval_to_the_end_of_the_successors_overlap() -> None:
    approved = T0 - timedelta(days=3)
    new = Cert("new", activate_at=T0, approved_at=approved)
    third = Cert("third", activate_at=T0 + timedelta(days=2), approved_at=T0)
    state = in_force([OLD, new, third], "signing", at=T0, overlap=OVERLAP)
    assert state.window(OLD) == AcceptWindow(OLD.activate_at, T0 + timedelta(days=2))
    assert state.window(new) == AcceptWindow(approved, third.activate_at + OVERLAP)
    assert state.window(third) == AcceptWindow(T0, None)
    only_two = in_force([OLD, new], "signing", at=T0, overlap=OVERLAP)
    assert only_two.window(OLD).accept_until == T0 + OVERLAP
    assert only_two.window(new).accept_until is None


def test_an_approval_recorded_after_the_activation_does_not_move_accept_from_later() -> None:
    late = Cert("late", activate_at=T0, approved_at=T0 + timedelta(hours=1))
    state = in_force([late], "signing", at=T0 + timedelta(hours=2), overlap=OVERLAP)
    assert state.window(late).accept_from == T0


def test_equal_activation_times_are_decided_by_approval_then_input_order() -> None:
    first = Cert("first", activate_at=T0, approved_at=T0 - timedelta(days=2))
    second = Cert("second", activate_at=T0, approved_at=T0 - timedelta(days=1))
    for order in ([first, second], [second, first]):
        state = in_force(order, "signing", at=T0, overlap=OVERLAP)
        assert (state.active, state.previous) == (second, first)
    same = Cert("same", activate_at=T0, approved_at=first.approved_at)
    assert in_force([first, same], "signing", at=T0, overlap=OVERLAP).active is same
    assert in_force([same, first], "signing", at=T0, overlap=OVERLAP).active is first
