"""Which certificate is in force at a moment: derived from activate_at, never stored.

For each owner and usage: `active` is the approved certificate with the latest
activate_at <= at; `previous` is the one it replaced, still accepted until
active.activate_at + overlap; `scheduled` are approved for later; `pending` have no
date yet. A certificate for usage "both" counts for signing and for encryption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

USAGES_IN_FORCE = ("signing", "encryption")


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


C = TypeVar("C", bound=Candidate)
# InForce only holds what in_force chose, so its parameter needs no bound. With one,
# mypy checks InForce[Model] in an annotation during semantic analysis, where it does not
# yet read an ORM model's Mapped[...] attributes as plain values: it refuses the model as
# a Candidate and keeps that refusal for the rest of the run (mypy 2.4, SQLAlchemy 2.0).
T = TypeVar("T")


@dataclass
class InForce(Generic[T]):
    """The certificates of one owner and usage at one moment."""

    active: T | None = None
    previous: T | None = None
    scheduled: list[T] = field(default_factory=list)
    pending: list[T] = field(default_factory=list)


def usages_served(usage: str) -> tuple[str, ...]:
    """The usages a certificate for USAGE counts for: "both" counts for signing and encryption."""
    return USAGES_IN_FORCE if usage == "both" else (usage,)


def serves(certificate: Candidate, usage: str) -> bool:
    """Whether CERTIFICATE can be used for USAGE."""
    return certificate.usage in (usage, "both")


def in_force(
    certificates: Iterable[C], usage: str, *, at: datetime, overlap: timedelta
) -> InForce[C]:
    """Apply the rule to one owner's CERTIFICATES for USAGE at moment AT."""
    live = [c for c in certificates if serves(c, usage) and c.withdrawn_at is None]
    dated = sorted(
        (c for c in live if c.activate_at is not None),
        key=lambda c: _activation(c),
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
    return result


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
