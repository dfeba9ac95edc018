"""The partner page's steps, the read-aloud fingerprint and the partner contact (no app)."""

from __future__ import annotations

import pytest

from portal.domain.partner_progress import (
    Situation,
    StepKey,
    StepState,
    UploadState,
    WindowState,
    partner_contacts,
    progress,
    reachable,
    read_aloud,
    upload_state,
)

DONE, CURRENT, TODO, WAITING = (
    StepState.DONE,
    StepState.CURRENT,
    StepState.TODO,
    StepState.WAITING,
)


def states(situation: Situation) -> list[tuple[str, str]]:
    return [(step.key.value, step.state.value) for step in progress(situation).steps]


def test_a_fresh_link_asks_every_step_and_the_first_is_current() -> None:
    fresh = Situation(can_download=True, can_upload=True)
    assert states(fresh) == [
        ("ours", "current"),
        ("upload", "todo"),
        ("window", "todo"),
        ("installed", "todo"),
    ]
    assert progress(fresh).current is StepKey.OURS
    assert not progress(fresh).finished


def test_only_the_steps_the_link_asks_for() -> None:
    upload_only = Situation(can_download=False, can_upload=True)
    assert [key for key, _ in states(upload_only)] == ["upload", "window"]
    download_only = Situation(can_download=True, can_upload=False)
    assert [key for key, _ in states(download_only)] == ["ours", "window", "installed"]


def test_the_current_step_is_the_first_not_done_whatever_order_they_were_done_in() -> None:
    situation = Situation(
        can_download=True, can_upload=True, downloaded=False, upload=UploadState.APPROVED,
        acknowledged=True,
    )  # fmt: skip
    assert states(situation) == [
        ("ours", "current"),
        ("upload", "done"),
        ("window", "todo"),
        ("installed", "done"),
    ]
    later = Situation(can_download=True, can_upload=True, downloaded=True)
    assert progress(later).current is StepKey.UPLOAD


@pytest.mark.parametrize(
    ("upload", "state"),
    [
        (UploadState.NONE, CURRENT),
        (UploadState.RECEIVED, DONE),  # waiting for review: nothing more to send
        (UploadState.APPROVED, DONE),
        (UploadState.REJECTED, CURRENT),  # they should send another
    ],
)
def test_the_upload_step_by_what_became_of_the_certificates(
    upload: UploadState, state: StepState
) -> None:
    situation = Situation(can_download=True, can_upload=True, downloaded=True, upload=upload)
    assert progress(situation).state_of(StepKey.UPLOAD) is state


@pytest.mark.parametrize(
    ("window", "state", "current"),
    [
        (WindowState.NONE, CURRENT, StepKey.WINDOW),
        (WindowState.PROPOSED_BY_US, CURRENT, StepKey.WINDOW),  # theirs to accept
        (WindowState.PROPOSED_BY_THEM, WAITING, StepKey.INSTALLED),  # ours to confirm
        (WindowState.ACCEPTED, DONE, StepKey.INSTALLED),
    ],
)
def test_the_window_step_by_who_proposed_it(
    window: WindowState, state: StepState, current: StepKey
) -> None:
    situation = Situation(
        can_download=True, can_upload=True, downloaded=True, upload=UploadState.RECEIVED,
        window=window,
    )  # fmt: skip
    assert progress(situation).state_of(StepKey.WINDOW) is state
    assert progress(situation).current is current


def test_finished_when_every_step_asked_is_done() -> None:
    everything = Situation(
        can_download=True, can_upload=True, downloaded=True, upload=UploadState.RECEIVED,
        window=WindowState.ACCEPTED, acknowledged=True,
    )  # fmt: skip
    assert progress(everything).finished
    assert progress(everything).current is None
    upload_only = Situation(
        can_download=False, can_upload=True, upload=UploadState.APPROVED,
        window=WindowState.ACCEPTED,
    )  # fmt: skip
    assert progress(upload_only).finished
    # Not acknowledging only matters when the link showed our certificate.
    assert progress(upload_only).state_of(StepKey.INSTALLED) is None


def test_a_proposal_of_theirs_waits_on_us_so_nothing_is_current_and_it_is_not_finished() -> None:
    waiting = Situation(
        can_download=True, can_upload=True, downloaded=True, upload=UploadState.RECEIVED,
        window=WindowState.PROPOSED_BY_THEM, acknowledged=True,
    )  # fmt: skip
    assert progress(waiting).current is None
    assert not progress(waiting).finished
    assert progress(waiting).state_of(StepKey.WINDOW) is WAITING


def test_exactly_one_step_is_current_while_one_is_left_to_do() -> None:
    for downloaded in (False, True):
        for upload in UploadState:
            for window in WindowState:
                for acknowledged in (False, True):
                    situation = Situation(True, True, downloaded, upload, window, acknowledged)
                    found = [s for s in progress(situation).steps if s.state is CURRENT]
                    left = [s for s in progress(situation).steps if s.state in (CURRENT, TODO)]
                    assert len(found) == (1 if left else 0), situation
                    if found:
                        assert left[0] == found[0]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], UploadState.NONE),
        (["rejected"], UploadState.REJECTED),
        (["rejected", "rejected"], UploadState.REJECTED),
        (["approved", "rejected"], UploadState.APPROVED),
        (["rejected", "received"], UploadState.RECEIVED),
        (["approved", "received"], UploadState.RECEIVED),
    ],
)
def test_upload_state_from_the_statuses(statuses: list[str], expected: UploadState) -> None:
    assert upload_state(statuses) is expected


SHA256 = "ab12cd34" + "0" * 48 + "9f0e77a1"


def test_read_aloud_gives_the_first_and_last_groups_of_four() -> None:
    assert read_aloud(SHA256) == "AB12 CD34 … 9F0E 77A1"
    colons = ":".join(SHA256[i : i + 2] for i in range(0, 64, 2)).upper()
    assert read_aloud(colons) == "AB12 CD34 … 9F0E 77A1"
    assert read_aloud(SHA256, groups=1) == "AB12 … 77A1"


def test_read_aloud_keeps_a_short_value_whole() -> None:
    assert read_aloud("ab12cd34ef56") == "AB12 CD34 EF56"
    assert read_aloud("") == ""


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("portal@localhost", False),
        ("certs@example.com", False),
        ("certs@EXAMPLE.ORG", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
        ("edi@acme.example", True),
        ("edi@acme.de", True),
    ],
)
def test_reachable(address: str | None, expected: bool) -> None:
    assert reachable(address) is expected


def test_partner_contacts_leave_placeholders_and_repeats_out() -> None:
    assert partner_contacts("edi@acme.de", "ops@acme.de") == ["edi@acme.de", "ops@acme.de"]
    assert partner_contacts("portal@localhost", "ops@acme.de") == ["ops@acme.de"]
    assert partner_contacts("edi@acme.de", "EDI@acme.de") == ["edi@acme.de"]
    assert partner_contacts("edi@acme.de", None) == ["edi@acme.de"]
    assert partner_contacts("portal@localhost", None) == []
    assert partner_contacts("portal@localhost", "x@example.com") == []
