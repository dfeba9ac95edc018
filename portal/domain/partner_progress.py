"""Where a partner stands on its link page: the steps it is asked, each one's state, and
whether everything is done; the short form of a fingerprint to read aloud; which contact
address a partner may be shown.

Pure: the web layer reads the link, submissions, window and acknowledgement and passes
what they mean here, so every state of the page is decided (and tested) without an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StepKey(StrEnum):
    """The four steps of a link page, named as the page's section ids."""

    OURS = "ours"
    UPLOAD = "upload"
    WINDOW = "window"
    INSTALLED = "installed"


class StepState(StrEnum):
    """A step as the partner sees it."""

    DONE = "done"
    CURRENT = "current"  # the first thing the partner should do now
    TODO = "todo"
    # The partner did its part; we act next (review a proposal of theirs). Never current.
    WAITING = "waiting"


class UploadState(StrEnum):
    """What became of the partner's certificates relevant to this link."""

    NONE = "none"
    RECEIVED = "received"  # at least one waits for review
    APPROVED = "approved"
    REJECTED = "rejected"  # every one was rejected: they should send another


class WindowState(StrEnum):
    """The latest change window, from the partner's side."""

    NONE = "none"
    PROPOSED_BY_US = "proposed_by_us"
    PROPOSED_BY_THEM = "proposed_by_them"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class Situation:
    """What the link asks and what has happened so far."""

    can_download: bool
    can_upload: bool
    downloaded: bool = False
    upload: UploadState = UploadState.NONE
    window: WindowState = WindowState.NONE
    acknowledged: bool = False


@dataclass(frozen=True)
class Step:
    """One step of the page and its state."""

    key: StepKey
    state: StepState

    @property
    def is_current(self) -> bool:
        """Whether this is the step the partner should do now."""
        return self.state is StepState.CURRENT


@dataclass(frozen=True)
class Progress:
    """The steps the link asks for, in order, and whether all are done."""

    steps: tuple[Step, ...]

    @property
    def current(self) -> StepKey | None:
        """The step to do now; None when nothing is left for the partner to do."""
        return next((step.key for step in self.steps if step.is_current), None)

    @property
    def finished(self) -> bool:
        """Every step the link asks for is done (nothing waits on either side)."""
        return all(step.state is StepState.DONE for step in self.steps)

    def state_of(self, key: StepKey) -> StepState | None:
        """The state of step KEY, or None when the link does not ask for it."""
        return next((step.state for step in self.steps if step.key is key), None)


def _own_states(situation: Situation) -> list[tuple[StepKey, StepState]]:
    """Each step the link asks for, done, waiting on us, or still to do (no current yet)."""
    todo, done, waiting = StepState.TODO, StepState.DONE, StepState.WAITING
    steps: list[tuple[StepKey, StepState]] = []
    if situation.can_download:
        steps.append((StepKey.OURS, done if situation.downloaded else todo))
    if situation.can_upload:
        sent = situation.upload in (UploadState.RECEIVED, UploadState.APPROVED)
        steps.append((StepKey.UPLOAD, done if sent else todo))
    window = {
        WindowState.ACCEPTED: done,
        WindowState.PROPOSED_BY_THEM: waiting,  # we confirm or propose another
    }.get(situation.window, todo)
    steps.append((StepKey.WINDOW, window))
    if situation.can_download:
        steps.append((StepKey.INSTALLED, done if situation.acknowledged else todo))
    return steps


def progress(situation: Situation) -> Progress:
    """The steps of SITUATION's link with their states; the first one to do is current."""
    steps: list[Step] = []
    current_given = False
    for key, state in _own_states(situation):
        if state is StepState.TODO and not current_given:
            state, current_given = StepState.CURRENT, True
        steps.append(Step(key, state))
    return Progress(tuple(steps))


def upload_state(statuses: list[str]) -> UploadState:
    """What STATUSES (of the partner's relevant submissions) mean for the upload step.

    One waiting for review wins (the partner waits for us), then an approved one; only
    rejections mean the partner should send another.
    """
    if "received" in statuses:
        return UploadState.RECEIVED
    if "approved" in statuses:
        return UploadState.APPROVED
    if "rejected" in statuses:
        return UploadState.REJECTED
    return UploadState.NONE


def read_aloud(fingerprint: str, groups: int = 2) -> str:
    """The first and last GROUPS groups of four hex characters, to compare by phone.

    'ab12cd34…9f0e77a1' or 'AB:12:CD:…' reads 'AB12 CD34 … 9F0E 77A1'. A value too short
    to shorten is returned whole, grouped.
    """
    hex_digits = "".join(ch for ch in fingerprint.upper() if ch in "0123456789ABCDEF")
    quads = [hex_digits[i : i + 4] for i in range(0, len(hex_digits), 4)]
    if len(quads) <= 2 * groups:
        return " ".join(quads)
    return " ".join([*quads[:groups], "…", *quads[-groups:]])


# Addresses nobody receives mail at: the portal's default (portal@localhost) and examples.
UNREACHABLE_DOMAINS = frozenset({"localhost", "example.com", "example.org"})


def reachable(address: str | None) -> bool:
    """Whether ADDRESS is one a partner could write to (not empty, not a placeholder)."""
    if not address or "@" not in address:
        return False
    return address.rpartition("@")[2].strip().lower() not in UNREACHABLE_DOMAINS


def partner_contacts(portal_contact: str | None, identity_contact: str | None) -> list[str]:
    """The addresses a partner is told to write to: the portal's, then the identity's.

    Placeholders are left out, and the identity's address when it is the portal's; an
    empty list means the partner should reply to the email that brought the link.
    """
    found: list[str] = []
    for address in (portal_contact, identity_contact):
        if address and reachable(address) and address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found
