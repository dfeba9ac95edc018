"""The certificate set in force, as GET /api/v1/config and `portal config-export` give it.

One document for every engine: per owner and usage what to `send` with, what to `accept`,
the rule's `active`/`previous`/`scheduled`, and `next_change_at`. The in-force rule is
portal.domain.inforce; this module only selects the owners, feeds the rule and writes JSON.
Its `version` (the ETag) is a hash of everything but `generated_at`, so it changes exactly
when the answer changes, a boundary passing included, and an engine can poll with
If-None-Match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session, selectinload

from portal.domain import certs
from portal.domain.aliases import certificate_alias
from portal.domain.certs import colon_fingerprint
from portal.domain.inforce import InForce, in_force_by_usage
from portal.models import Certificate, Identity, Partner
from portal.services.errors import NotFoundError


@dataclass(frozen=True)
class Selection:
    """Which owners a document covers: all, or those matching the AS2 IDs given."""

    identity: str | None = None
    partner: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class ConfigDocument:
    """The document and its version (a strong ETag value, without quotes)."""

    body: dict[str, Any]
    version: str

    def to_json(self) -> str:
        """Compact JSON, the form served and printed."""
        return json.dumps(self.body, separators=(",", ":"))


def config_document(
    session: Session, *, at: datetime, overlap: timedelta, selection: Selection | None = None
) -> dict[str, Any]:
    """Every selected identity and partner with its certificates for each usage at AT."""
    return build(session, at=at, overlap=overlap, selection=selection).body


def build(
    session: Session, *, at: datetime, overlap: timedelta, selection: Selection | None = None
) -> ConfigDocument:
    """The document for AT with its version; NotFoundError when a filter matches nothing."""
    chosen = selection or Selection()
    identities, partners = _owners(session, chosen)
    writer = _Writer(session, at, overlap, chosen, (identities, partners))
    content = {
        "overlap_seconds": int(overlap.total_seconds()),
        "identities": [writer.identity(identity) for identity in identities],
        "partners": [writer.partner(partner) for partner in partners],
    }
    version = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return ConfigDocument({"generated_at": iso(at), **content}, version)


def _owners(session: Session, chosen: Selection) -> tuple[list[Identity], list[Partner]]:
    for kind, as2_id in (("identity", chosen.identity), ("partner", chosen.partner)):
        if as2_id is not None and "\x00" in as2_id:
            # No AS2 ID holds a NUL and PostgreSQL refuses one in a query (SQLite just finds
            # nothing): answer 404 on both without asking the database.
            raise NotFoundError(f"No {kind} with AS2 ID {as2_id}.")
    partner_filter = _partner_filter(chosen)
    partners = list(
        session.scalars(
            select(Partner)
            .join(Partner.identity)
            .where(partner_filter)
            .options(selectinload(Partner.identity))
            .order_by(Partner.as2_id, Partner.environment)
        )
    )
    identities = list(session.scalars(_identities_query(chosen, partner_filter)))
    if chosen.identity is not None and not identities:
        raise NotFoundError(f"No identity with AS2 ID {chosen.identity}.")
    if chosen.partner is not None and not partners:
        raise NotFoundError(f"No partner with AS2 ID {chosen.partner}.")
    return identities, partners


def _partner_filter(chosen: Selection) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if chosen.identity is not None:
        condition = condition & (Identity.as2_id == chosen.identity)
    if chosen.partner is not None:
        condition = condition & (Partner.as2_id == chosen.partner)
    if chosen.environment is not None:
        condition = condition & (Partner.environment == chosen.environment)
    return condition


def _identities_query(chosen: Selection, partner_filter: ColumnElement[bool]) -> Select[Any]:
    query = select(Identity).order_by(Identity.as2_id, Identity.environment)
    if chosen.identity is not None:
        query = query.where(Identity.as2_id == chosen.identity)
    if chosen.environment is not None:
        query = query.where(Identity.environment == chosen.environment)
    if chosen.partner is not None:
        # Only the identities the selected partners trade with.
        trading = select(Partner.identity_id).join(Partner.identity).where(partner_filter)
        query = query.where(Identity.id.in_(trading))
    return query


class _Writer:
    """Writes owners as JSON, loading their certificates once and each certificate once."""

    def __init__(
        self,
        session: Session,
        at: datetime,
        overlap: timedelta,
        selection: Selection,
        owners: tuple[list[Identity], list[Partner]],
    ) -> None:
        identities, partners = owners
        self.at, self.overlap = at, overlap
        everything = selection == Selection()
        self.by_identity = _group(
            session, Certificate.identity_id, None if everything else [i.id for i in identities]
        )
        self.by_partner = _group(
            session, Certificate.partner_id, None if everything else [p.id for p in partners]
        )
        self._fixed: dict[int, dict[str, Any]] = {}

    def identity(self, identity: Identity) -> dict[str, Any]:
        """One identity's entry."""
        return {
            "as2_id": identity.as2_id,
            "name": identity.name,
            "environment": identity.environment,
            "certificates": self._usages(self.by_identity.get(identity.id, []), identity.as2_id),
        }

    def partner(self, partner: Partner) -> dict[str, Any]:
        """One partner's entry."""
        return {
            "as2_id": partner.as2_id,
            "name": partner.name,
            "identity": partner.identity.as2_id,
            "environment": partner.environment,
            "certificates": self._usages(self.by_partner.get(partner.id, []), partner.as2_id),
        }

    def _usages(self, certificates: list[Certificate], owner: str) -> dict[str, dict[str, Any]]:
        states = in_force_by_usage(certificates, at=self.at, overlap=self.overlap)
        return {usage: self._usage(state, owner) for usage, state in states.items()}

    def _usage(self, state: InForce[Certificate], owner: str) -> dict[str, Any]:
        def cert(certificate: Certificate | None) -> dict[str, Any] | None:
            if certificate is None:
                return None
            window = state.window(certificate)
            return {
                **self._fixed_part(certificate, owner),
                "accept_from": iso_or_none(window.accept_from),
                "accept_until": iso_or_none(window.accept_until),
            }

        return {
            "send": cert(state.send),
            "accept": [cert(c) for c in state.accept],
            "active": cert(state.active),
            "previous": cert(state.previous),
            "scheduled": [cert(c) for c in state.scheduled],
            "next_change_at": iso_or_none(state.next_change_at),
        }

    def _fixed_part(self, certificate: Certificate, owner: str) -> dict[str, Any]:
        """What does not depend on the moment; written once per certificate per document."""
        fixed = self._fixed.get(certificate.id)
        if fixed is None:
            fixed = self._fixed[certificate.id] = describe(certificate, owner)
        return fixed


def describe(certificate: Certificate, owner_as2_id: str) -> dict[str, Any]:
    """A certificate's public facts as the document gives them (without its accept window)."""
    return {
        "fingerprint_sha256": colon_fingerprint(certificate.sha256),
        "fingerprint_sha1": colon_fingerprint(certificate.sha1),
        "serial": certificate.serial,
        "serial_decimal": str(int(certificate.serial, 16)),
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "usage": certificate.usage,
        "not_before": iso(certificate.not_before),
        "not_after": iso(certificate.not_after),
        "activate_at": iso_or_none(certificate.activate_at),
        "alias": certificate_alias(owner_as2_id, certificate.sha256),
        "pem": certs.export_pem(certificate.der).decode("ascii"),
        "chain": chain_pems(certificate),
    }


def chain_pems(certificate: Certificate) -> list[str]:
    """The intermediate certificates stored with CERTIFICATE, one PEM each, as received."""
    marker = "-----END CERTIFICATE-----"
    parts = certificate.chain_pem.split(marker)
    return [part.strip() + "\n" + marker + "\n" for part in parts if part.strip()]


def _group(
    session: Session, column: Any, owner_ids: Iterable[int] | None
) -> dict[int, list[Certificate]]:
    """Certificates by owner id: of the owners given, or of every owner (None)."""
    grouped: dict[int, list[Certificate]] = {}
    if owner_ids is None:
        for certificate in session.scalars(select(Certificate).where(column.is_not(None))):
            grouped.setdefault(getattr(certificate, column.key), []).append(certificate)
        return grouped
    ids = list(owner_ids)
    # Chunks keep the statement under SQLite's and psycopg's parameter limits.
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for certificate in session.scalars(select(Certificate).where(column.in_(chunk))):
            grouped.setdefault(getattr(certificate, column.key), []).append(certificate)
    return grouped


def iso(moment: datetime) -> str:
    """MOMENT as ISO 8601 UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(moment: datetime | None) -> str | None:
    """iso(MOMENT), or None."""
    return iso(moment) if moment is not None else None
