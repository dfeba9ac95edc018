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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from portal.domain import certs
from portal.domain.aliases import certificate_alias
from portal.domain.certs import colon_fingerprint
from portal.domain.inforce import InForce, in_force_by_usage
from portal.models import Certificate, Identity, Partner
from portal.services.certificates import chain_pems
from portal.services.errors import NotFoundError

CHUNK = 5000  # ids per IN (...): under SQLite's and psycopg's parameter limits


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

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the form served and printed."""
        return orjson.dumps(self.body)


def config_document(
    session: Session, *, at: datetime, overlap: timedelta, selection: Selection | None = None
) -> dict[str, Any]:
    """Every selected identity and partner with its certificates for each usage at AT."""
    return build(session, at=at, overlap=overlap, selection=selection).body


def build(
    session: Session, *, at: datetime, overlap: timedelta, selection: Selection | None = None
) -> ConfigDocument:
    """The document for AT with its version; NotFoundError when a filter matches nothing."""
    return plan(session, at=at, overlap=overlap, selection=selection).render(session)


def plan(
    session: Session, *, at: datetime, overlap: timedelta, selection: Selection | None = None
) -> Plan:
    """Apply the rule for AT without loading any certificate's bytes: enough for the version.

    An engine polling with If-None-Match is answered from the plan alone; only a changed
    answer is rendered.
    """
    chosen = selection or Selection()
    identities, partners = _owners(session, chosen)
    everything = chosen == Selection()
    by_identity = _group(
        session, Certificate.identity_id, None if everything else [i.id for i in identities]
    )
    by_partner = _group(
        session, Certificate.partner_id, None if everything else [p.id for p in partners]
    )
    return Plan(
        at=at,
        overlap=overlap,
        identities=[
            _OwnerPlan(_identity_facts(i), _states(by_identity.get(i.id, []), at, overlap))
            for i in identities
        ],
        partners=[
            _OwnerPlan(_partner_facts(p), _states(by_partner.get(p.id, []), at, overlap))
            for p in partners
        ],
    )


def partner_feed(
    session: Session, partner: Partner, *, at: datetime, overlap: timedelta
) -> ConfigDocument:
    """Our certificates for PARTNER in the document's usage shape: what its automation follows."""
    identity = partner.identity
    certificates = _group(session, Certificate.identity_id, [identity.id]).get(identity.id, [])
    owner = _OwnerPlan(_identity_facts(identity), _states(certificates, at, overlap))
    feed = Plan(at=at, overlap=overlap, identities=[owner], partners=[])
    details = _details(session, feed.certificate_ids())
    content = {
        "overlap_seconds": int(overlap.total_seconds()),
        "identity": owner.facts,
        "partner": {"as2_id": partner.as2_id, "name": partner.name},
        "certificates": feed.usages(owner, details),
    }
    # The body names the partner too, so its facts are part of the version.
    partner_facts = repr((partner.as2_id, partner.name, partner.environment)).encode()
    version = hashlib.sha256(feed.version.encode() + partner_facts).hexdigest()
    return ConfigDocument({"generated_at": iso(at), **content}, version)


@dataclass
class _OwnerPlan:
    """One owner's facts and the rule's answer for each usage."""

    facts: dict[str, Any]
    states: dict[str, InForce[_Light]]


@dataclass
class Plan:
    """The rule applied to every selected owner at one moment, certificates' bytes not loaded."""

    at: datetime
    overlap: timedelta
    identities: list[_OwnerPlan]
    partners: list[_OwnerPlan]

    @cached_property
    def version(self) -> str:
        """A hash of everything the answer depends on, `generated_at` excepted.

        Certificates' bytes are immutable for a row (its fingerprints say so), so the row id,
        fingerprint and the per-moment facts stand for the whole certificate.
        """
        digest = hashlib.sha256(f"{self.overlap.total_seconds()}".encode())
        for kind, owners in (("i", self.identities), ("p", self.partners)):
            for owner in owners:
                digest.update(repr((kind, sorted(owner.facts.items()))).encode())
                for usage, state in owner.states.items():
                    digest.update(repr((usage, _skeleton(state))).encode())
        return digest.hexdigest()

    def certificate_ids(self) -> set[int]:
        """Every certificate the answer names."""
        return {
            certificate.id
            for owner in (*self.identities, *self.partners)
            for state in owner.states.values()
            for certificate in _named(state)
        }

    def render(self, session: Session) -> ConfigDocument:
        """The whole document, loading the PEM of every certificate it names once."""
        details = _details(session, self.certificate_ids())
        body = {
            "generated_at": iso(self.at),
            "overlap_seconds": int(self.overlap.total_seconds()),
            "identities": [self.entry(owner, details) for owner in self.identities],
            "partners": [self.entry(owner, details) for owner in self.partners],
        }
        return ConfigDocument(body, self.version)

    def entry(self, owner: _OwnerPlan, details: dict[int, Any]) -> dict[str, Any]:
        """One owner as the document lists it."""
        return {**owner.facts, "certificates": self.usages(owner, details)}

    def usages(self, owner: _OwnerPlan, details: dict[int, Any]) -> dict[str, Any]:
        """An owner's per-usage answer."""
        alias_owner = owner.facts["as2_id"]
        described: dict[int, dict[str, Any]] = {}

        def fixed(certificate: _Light) -> dict[str, Any]:
            if certificate.id not in described:
                row = details[certificate.id]
                described[certificate.id] = describe(
                    row, alias_owner, pem=certs.armour_pem(row.der)
                )
            return described[certificate.id]

        return {str(usage): _usage_entry(state, fixed) for usage, state in owner.states.items()}


def _usage_entry(
    state: InForce[_Light], fixed: Callable[[_Light], dict[str, Any]]
) -> dict[str, Any]:
    def cert(certificate: _Light | None) -> dict[str, Any] | None:
        if certificate is None:
            return None
        window = state.window(certificate)
        return {
            **fixed(certificate),
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


def _named(state: InForce[_Light]) -> list[_Light]:
    """The certificates a usage's answer names (send and active are in accept)."""
    return [*state.accept]


def _skeleton(state: InForce[_Light]) -> tuple[Any, ...]:
    def key(certificate: _Light | None) -> tuple[Any, ...] | None:
        if certificate is None:
            return None
        window = state.window(certificate)
        return (
            certificate.id,
            certificate.sha256,
            certificate.usage,
            certificate.activate_at,
            window.accept_from,
            window.accept_until,
            certificate.chain_pem,
        )

    return (
        key(state.active),
        key(state.previous),
        tuple(key(c) for c in state.scheduled),
        state.next_change_at,
    )


def _states(
    certificates: list[_Light], at: datetime, overlap: timedelta
) -> dict[str, InForce[_Light]]:
    return in_force_by_usage(certificates, at=at, overlap=overlap)


def _identity_facts(identity: Identity) -> dict[str, Any]:
    return {
        "as2_id": identity.as2_id,
        "name": identity.name,
        "environment": identity.environment,
    }


def _partner_facts(partner: Any) -> dict[str, Any]:
    """A partner row's entry facts (id, as2_id, name, environment, identity_as2_id)."""
    return {
        "as2_id": partner.as2_id,
        "name": partner.name,
        "identity": partner.identity_as2_id,
        "environment": partner.environment,
    }


def _details(session: Session, ids: Iterable[int]) -> dict[int, Any]:
    """Everything the document says about each certificate in IDS, one query per chunk."""
    wanted = sorted(ids)
    found: dict[int, Any] = {}
    columns = [Certificate.__table__.c[name] for name in _DETAIL_COLUMNS]
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for row in session.execute(select(*columns).where(Certificate.id.in_(chunk))):
            found[row.id] = row
    return found


def _owners(session: Session, chosen: Selection) -> tuple[list[Identity], list[Any]]:
    for kind, as2_id in (("identity", chosen.identity), ("partner", chosen.partner)):
        if as2_id is not None and "\x00" in as2_id:
            # No AS2 ID holds a NUL and PostgreSQL refuses one in a query (SQLite just finds
            # nothing): answer 404 on both without asking the database.
            raise NotFoundError(f"No {kind} with AS2 ID {as2_id}.")
    partner_filter = _partner_filter(chosen)
    # Rows, not ORM objects: a large install has thousands of partners and the document
    # needs four columns of each.
    partners = list(
        session.execute(
            select(
                Partner.id,
                Partner.as2_id,
                Partner.name,
                Partner.environment,
                Identity.as2_id.label("identity_as2_id"),
            )
            .join(Partner.identity)
            .where(partner_filter)
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


def describe(certificate: Any, owner_as2_id: str, *, pem: str) -> dict[str, Any]:
    """A certificate's public facts as the document gives them (without its accept window).

    CERTIFICATE is a Certificate or a row with the same attribute names.
    """
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
        "pem": pem,
        "chain": chain_pems(certificate),
    }


@dataclass(frozen=True, slots=True)
class _Light:
    """What the rule and the version need of a certificate: no bytes, no names."""

    id: int
    owner_id: int
    usage: str
    sha256: str
    activate_at: datetime | None
    approved_at: datetime | None
    withdrawn_at: datetime | None
    not_after: datetime
    chain_pem: str


_LIGHT_COLUMNS = (
    "id",
    "usage",
    "sha256",
    "activate_at",
    "approved_at",
    "withdrawn_at",
    "not_after",
    "chain_pem",
)
_DETAIL_COLUMNS = (
    "id",
    "der",
    "sha256",
    "sha1",
    "serial",
    "subject",
    "issuer",
    "usage",
    "not_before",
    "not_after",
    "activate_at",
    "chain_pem",
)


def _group(
    session: Session, owner_column: Any, owner_ids: Iterable[int] | None
) -> dict[int, list[_Light]]:
    """Certificates by owner id, of the owners given or of every owner (None): plain rows,
    because building ORM objects for every certificate would cost more than the rule."""
    table = Certificate.__table__
    # Ordered by id: the rule breaks ties between equal activation times by input order.
    light = select(owner_column, *(table.c[name] for name in _LIGHT_COLUMNS)).order_by(table.c.id)
    if owner_ids is None:
        queries = [light.where(owner_column.is_not(None))]
    else:
        ids = list(owner_ids)
        queries = [
            light.where(owner_column.in_(ids[start : start + CHUNK]))
            for start in range(0, len(ids), CHUNK)
        ]
    grouped: dict[int, list[_Light]] = {}
    for query in queries:
        for owner_id, *values in session.execute(query):
            grouped.setdefault(owner_id, []).append(_Light(values[0], owner_id, *values[1:]))
    return grouped


def iso(moment: datetime) -> str:
    """MOMENT as ISO 8601 UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(moment: datetime | None) -> str | None:
    """iso(MOMENT), or None."""
    return iso(moment) if moment is not None else None
