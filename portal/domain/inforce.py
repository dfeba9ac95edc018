"""Which certificate is in force at a moment: derived from activate_at, never stored.

For each owner and usage: `active` is the approved certificate with the latest
activate_at <= at; `previous` is the one it replaced, still accepted until
active.activate_at + overlap; `scheduled` are approved for later; `pending` have no
date yet. A certificate for usage "both" counts for signing and for encryption.

What an AS2 engine does with that: it *sends* with the active certificate (signs with
our key, encrypts to the partner's), and *accepts* inbound traffic under the active
one, the previous one during the overlap and every approved scheduled one, because the
other side may switch a few minutes before the agreed moment. `next_change_at` is the
first moment after AT at which any of that changes, so an engine knows when to look again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from portal.domain.vocab import USAGES_IN_FORCE, usages_served


class Candidate(Protocol):
    """What the rule needs to know about a certificate."""

    @property
    def usage(self) -> str:
        """signing, encryption or both."""

    @property
    def activate_at(self) -> datetime | None:
        """When it takes effect; None while no date is agreed."""

    @property
    def withdrawn_at(self) -> datetime | None:
        """When it was cancelled or rolled back; withdrawn certificates never count."""

    @property
    def not_after(self) -> datetime:
        """Its expiry."""

    @property
    def approved_at(self) -> datetime | None:
        """When its activate_at was approved (engines accept it from then on)."""


C = TypeVar("C", bound=Candidate)
# InForce only holds what in_force chose, so its parameter needs no bound. With one,
# mypy checks InForce[Model] in an annotation during semantic analysis, where it does not
# yet read an ORM model's Mapped[...] attributes as plain values: it refuses the model as
# a Candidate and keeps that refusal for the rest of the run (mypy 2.4, SQLAlchemy 2.0).
T = TypeVar("T")


@dataclass(frozen=True)
class AcceptWindow:
    """When an engine should accept a certificate for inbound traffic (None: open-ended)."""

    accept_from: datetime | None
    accept_until: datetime | None


@dataclass
class InForce(Generic[T]):
    """The certificates of one owner and usage at one moment."""

    active: T | None = None
    previous: T | None = None
    scheduled: list[T] = field(default_factory=list)
    pending: list[T] = field(default_factory=list)
    # The first moment after AT at which active, previous or scheduled change.
    next_change_at: datetime | None = None
    # Each dated certificate's window, in the same order as the timeline (by activate_at).
    windows: list[tuple[T, AcceptWindow]] = field(default_factory=list)

    @property
    def send(self) -> T | None:
        """The certificate for outbound traffic: the active one."""
        return self.active

    @property
    def accept(self) -> list[T]:
        """Every certificate to accept inbound traffic under: active, previous, scheduled."""
        chosen = [c for c in (self.active, self.previous) if c is not None]
        return [*chosen, *self.scheduled]

    def window(self, certificate: T) -> AcceptWindow:
        """CERTIFICATE's accept window (open on both sides when it has no date)."""
        for candidate, window in self.windows:
            if candidate is certificate:
                return window
        return AcceptWindow(None, None)


def serves(certificate: Candidate, usage: str) -> bool:
    """Whether CERTIFICATE can be used for USAGE (one for "both" serves either)."""
    return usage == certificate.usage or usage in usages_served(certificate.usage)


def in_force(
    certificates: Iterable[C], usage: str, *, at: datetime, overlap: timedelta
) -> InForce[C]:
    """Apply the rule to one owner's CERTIFICATES for USAGE at moment AT."""
    live = [c for c in certificates if serves(c, usage) and c.withdrawn_at is None]
    # Equal activation times: the later approval wins, then the later in CERTIFICATES
    # (services pass them in the order they were stored), so every caller agrees.
    dated = sorted(
        (c for c in live if c.activate_at is not None),
        key=lambda c: (_activation(c), c.approved_at or _activation(c)),
    )
    started = [c for c in dated if _activation(c) <= at]
    result: InForce[C] = InForce(
        scheduled=[c for c in dated if _activation(c) > at],
        pending=[c for c in live if c.activate_at is None and c.not_after > at],
    )
    if started:
        result.active = started[-1]
        if len(started) > 1 and at < _activation(started[-1]) + overlap:
            result.previous = started[-2]
    result.next_change_at = _next_change(result, at, overlap)
    result.windows = [(c, _window(dated, i, overlap)) for i, c in enumerate(dated)]
    return result


def _next_change(state: InForce[C], at: datetime, overlap: timedelta) -> datetime | None:
    """The next scheduled activation, or the end of the overlap, whichever comes first."""
    moments = [_activation(c) for c in state.scheduled[:1]]
    if state.previous is not None and state.active is not None:
        moments.append(_activation(state.active) + overlap)
    later = [m for m in moments if m > at]
    return min(later, default=None)


def _window(timeline: Sequence[C], index: int, overlap: timedelta) -> AcceptWindow:
    """Accepted from its approval; until its successor's overlap ends or the next one starts.

    A certificate stops being accepted when it is neither active nor previous: at its
    successor's activation plus the overlap, or earlier if a second successor starts
    within that overlap (only one previous certificate is accepted at a time).
    """
    certificate = timeline[index]
    start = _activation(certificate)
    approved = certificate.approved_at
    accept_from = approved if approved is not None and approved < start else start
    successors = [_activation(c) for c in timeline[index + 1 : index + 3]]
    if not successors:
        return AcceptWindow(accept_from, None)
    ends = [successors[0] + overlap, *successors[1:]]
    return AcceptWindow(accept_from, min(ends))


def in_force_by_usage(
    certificates: Sequence[C], *, at: datetime, overlap: timedelta
) -> dict[str, InForce[C]]:
    """The rule for signing and encryption at once."""
    return {
        usage: in_force(certificates, usage, at=at, overlap=overlap) for usage in USAGES_IN_FORCE
    }


def _activation(certificate: Candidate) -> datetime:
    moment = certificate.activate_at
    assert moment is not None  # noqa: S101  (only called on dated certificates)
    return moment
