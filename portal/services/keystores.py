"""Keystore export for AS2 engines: our keys as one PKCS#12, chosen by fingerprint or by role.

By fingerprint: that one certificate. By `which`, at a moment and for a usage (signing,
encryption, or when none is given both), as the one in-force rule decides it: the active
key, the previous one (still accepted during the overlap), the approved scheduled ones, or
`accept`: every key an engine needs for inbound traffic at that moment (active, previous,
scheduled), in one file. Each entry is filed under its alias, so generations never collide
in one Java keystore. The command line and the API both call `export`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from portal.domain.keys import KeyRing
from portal.domain.vocab import USAGES_IN_FORCE, usage_words, usages_served, values_of
from portal.models import Certificate, Identity
from portal.services import certificates, key_export
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError
from portal.services.inforce import Owner, owner_state

_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Which(StrEnum):
    """Which of an identity's certificates, by their place in the in-force rule."""

    ACTIVE = "active"
    PREVIOUS = "previous"
    SCHEDULED = "scheduled"
    ACCEPT = "accept"


@dataclass(frozen=True)
class Selection:
    """What to export: one fingerprint, or WHICH for USAGE (None: both) at AT."""

    at: datetime
    certificate: str | None = None
    which: str | None = None
    usage: str | None = None


@dataclass(frozen=True)
class Exported:
    """A keystore just written: the file, a file name for it, and what it holds."""

    data: bytes
    filename: str
    certificates: list[Certificate]


def export(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    selection: Selection,
    *,
    passphrase: str,
    legacy: bool,
    overlap: timedelta,
) -> Exported:
    """The keys SELECTION names, as one PKCS#12 under PASSPHRASE; audited."""
    key_export.check_export_passphrase(passphrase)
    chosen = choose(session, identity, selection, overlap=overlap)
    data = key_export.export_keystore(
        session,
        actor,
        keyring,
        identity,
        chosen,
        passphrase=passphrase,
        legacy=legacy,
        details={
            "certificate": selection.certificate,
            "which": selection.which,
            "usage": selection.usage,
            "at": selection.at.isoformat(),
        },
    )
    return Exported(data, _file_name(identity, selection, chosen), chosen)


def choose(
    session: Session, identity: Identity, selection: Selection, *, overlap: timedelta
) -> list[Certificate]:
    """The certificates SELECTION names; NotFoundError when it names none."""
    if (selection.certificate is None) == (selection.which is None):
        raise ServiceError("Name either a certificate (its SHA-256) or which, not both.")
    if selection.certificate is not None:
        if selection.usage is not None:
            raise ServiceError("A usage goes with which, not with a certificate's fingerprint.")
        return [certificates.find_identity_certificate(session, identity, selection.certificate)]
    which = _which(selection.which)
    chosen: list[Certificate] = []
    for usage in _usages(selection.usage):
        state = owner_state(
            session, Owner(identity_id=identity.id), usage, now=selection.at, overlap=overlap
        )
        named = {
            Which.ACTIVE: [state.active] if state.active is not None else [],
            Which.PREVIOUS: [state.previous] if state.previous is not None else [],
            Which.SCHEDULED: state.scheduled,
            Which.ACCEPT: state.accept,
        }[which]
        chosen.extend(c for c in named if c not in chosen)
    if not chosen:
        raise NotFoundError(_none_message(identity, which, selection))
    return chosen


def _which(value: str | None) -> Which:
    try:
        return Which(value or "")
    except ValueError:
        raise ServiceError(
            f"which must be one of {', '.join(values_of(Which))}.", field="which"
        ) from None


def _usages(value: str | None) -> tuple[str, ...]:
    """The usages to look at: signing and encryption unless one is named."""
    if value is None:
        return USAGES_IN_FORCE
    return tuple(usages_served(certificates.requested_usage(value)))


def _none_message(identity: Identity, which: Which, selection: Selection) -> str:
    what = {
        Which.ACTIVE: "no active certificate",
        Which.PREVIOUS: "no previous certificate (none is within its overlap)",
        Which.SCHEDULED: "no approved scheduled certificate",
        Which.ACCEPT: "no certificate to accept inbound traffic under",
    }[which]
    usage = f" for {usage_words(selection.usage)}" if selection.usage else ""
    return f"Identity {identity.as2_id} has {what}{usage} at {selection.at:%Y-%m-%dT%H:%M:%SZ}."


def _file_name(identity: Identity, selection: Selection, chosen: list[Certificate]) -> str:
    """A server-chosen, safe file name: AS2 ID, then the fingerprint or which and usage."""
    if selection.certificate is not None:
        return f"{certificates.file_stem(chosen[0])}.p12"
    as2_id = _UNSAFE_IN_FILE_NAME.sub("_", identity.as2_id)[:60]
    return f"{as2_id}-{selection.usage or 'all'}-{selection.which}.p12"
