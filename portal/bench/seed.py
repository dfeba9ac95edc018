"""Bulk seeding of the throwaway database: identities, staff, then partners in chunks."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.orm import Session

from portal.bench import rows
from portal.bench.certs import CertMaker, certificate_fields, private_der
from portal.domain.keys import KeyRing
from portal.domain.vocab import Usage
from portal.models import (
    Certificate,
    ChangeWindow,
    Identity,
    Partner,
    PartnerContact,
    ShareLink,
    SideEffect,
    Submission,
)
from portal.services import audit, users
from portal.services.actor import Actor
from portal.services.certificates import certificate_aad
from portal.services.runner import ACTIVATED

CHUNK = 250  # partners per transaction
IDENTITIES = 4  # the first trades with half the partners (the campaign's), the rest share
ADMIN_EMAIL = "bench-admin@bench.example"
Progress = Callable[[str], None]


@dataclass
class Seeded:
    """What the measurements need to know about the seeded data."""

    admin_email: str
    admin_password: str = field(repr=False)
    admin_id: int
    identity_ids: list[int]
    link_ids: list[str] = field(default_factory=list)  # one per partner, in partner order
    partners: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class Seeder:
    """Seeds ENGINE's empty database; grow() adds partners up to a total, in bulk."""

    def __init__(
        self, engine: Engine, keyring: KeyRing, maker: CertMaker, progress: Progress, now: datetime
    ) -> None:
        """Remember where and how to write; nothing is written yet."""
        self.engine, self.keyring, self.maker = engine, keyring, maker
        self.progress, self.now = progress, now
        self.seeded: Seeded | None = None

    def start(self) -> Seeded:
        """The staff admin (a random password), our identities and their certificates."""
        password = secrets.token_urlsafe(18)
        with Session(self.engine) as session:
            admin, _ = users.create_user(
                session, Actor("bench"), email=ADMIN_EMAIL, role="admin", password=password
            )
            admin_id = admin.id
            session.commit()
        with self.engine.begin() as connection:
            identity_ids = list(
                connection.scalars(
                    insert(Identity).returning(Identity.id, sort_by_parameter_order=True),
                    [
                        {
                            "name": f"Bench Hub {n}",
                            "as2_id": f"BENCHHUB{n}",
                            "environment": "production",
                            "organisation": "Bench Corp",
                            "contact_email": f"as2-{n}@bench.example",
                        }
                        for n in range(IDENTITIES)
                    ],
                )
            )
            for identity_id in identity_ids:
                self._identity_certificates(connection, identity_id, admin_id)
        self.seeded = Seeded(ADMIN_EMAIL, password, admin_id, identity_ids)
        return self.seeded

    def identity_certificate(
        self,
        connection: Connection,
        identity_id: int,
        *,
        admin_id: int,
        not_before: datetime,
        not_after: datetime,
        activate_at: datetime | None,
    ) -> int:
        """Store one certificate of ours with its key encrypted under the key ring; its id."""
        der = self.maker.der(
            f"BENCHHUB{identity_id}",
            "Bench Corp",
            not_before=not_before,
            not_after=not_after,
            slot=0,
        )
        fields_ = certificate_fields(der)
        blob = self.keyring.encrypt(
            private_der(self.maker.keys[0]), associated_data=certificate_aad(fields_["sha256"])
        )
        row = {
            **fields_,
            "identity_id": identity_id,
            "usage": Usage.BOTH.value,
            "source": "generated",
            "encrypted_private_key": blob,
            "activate_at": activate_at,
            "created_by_id": admin_id,
            "approved_by_id": admin_id if activate_at else None,
        }
        inserted = connection.execute(insert(Certificate).returning(Certificate.id), row)
        certificate_id = int(inserted.scalar_one())
        if activate_at is not None and activate_at <= self.now:
            connection.execute(
                insert(SideEffect), [_activation_done(certificate_id, activate_at, self.now)]
            )
        return certificate_id

    def _identity_certificates(self, connection: Connection, identity_id: int, admin: int) -> None:
        now = self.now
        self.identity_certificate(
            connection,
            identity_id,
            admin_id=admin,
            not_before=now - timedelta(days=800),
            not_after=now - timedelta(days=30),
            activate_at=now - timedelta(days=790),
        )
        self.identity_certificate(
            connection,
            identity_id,
            admin_id=admin,
            not_before=now - timedelta(days=60),
            not_after=now + timedelta(days=400),
            activate_at=now - timedelta(days=50),
        )

    def grow(self, total: int) -> None:
        """Add partners until there are TOTAL, CHUNK per transaction, saying how far it got."""
        seeded = self.seeded
        assert seeded is not None, "start() first"  # noqa: S101  (a programming error)
        while seeded.partners < total:
            stop = min(total, seeded.partners + CHUNK)
            with self.engine.begin() as connection:
                self._chunk(connection, range(seeded.partners, stop))
            seeded.partners = stop
            if stop % 1000 == 0 or stop == total:
                self.progress(f"seeding partners {stop}/{total}")

    def _chunk(self, connection: Connection, numbers: range) -> None:
        seeded = self.seeded
        assert seeded is not None  # noqa: S101
        admin = (seeded.admin_id, seeded.admin_email)
        identity_of = [_identity_for(i, seeded.identity_ids) for i in numbers]
        partner_ids = list(
            connection.scalars(
                insert(Partner).returning(Partner.id, sort_by_parameter_order=True),
                [
                    rows.partner_row(i, identity)
                    for i, identity in zip(numbers, identity_of, strict=True)
                ],
            )
        )
        pairs = list(zip(numbers, partner_ids, strict=True))
        _insert(connection, PartnerContact, [r for i, p in pairs for r in rows.contact_rows(i, p)])
        links = {p: rows.link_row(p, admin[0], self.now) for _, p in pairs}
        _insert(connection, ShareLink, list(links.values()))
        seeded.link_ids.extend(links[p]["id"] for _, p in pairs)
        certificates = {
            p: rows.certificate_rows(self.maker, i, p, admin[0], self.now) for i, p in pairs
        }
        flat = [row for p in partner_ids for row in certificates[p]]
        cert_ids = list(
            connection.scalars(
                insert(Certificate).returning(Certificate.id, sort_by_parameter_order=True), flat
            )
        )
        done = [
            _activation_done(cid, row["activate_at"], self.now)
            for cid, row in zip(cert_ids, flat, strict=True)
            if row["activate_at"] <= self.now
        ]
        _insert(connection, SideEffect, done)
        ids = iter(cert_ids)
        current_ids = {p: [next(ids) for _ in certificates[p]][1] for p in partner_ids}
        submissions = []
        for i, p in pairs:
            link_id = links[p]["id"]
            submissions += rows.submission_rows(
                self.maker, i, p, link_id, certificates[p][1], current_ids[p], admin[0], self.now
            )
        _insert(connection, Submission, submissions)
        _insert(
            connection,
            ChangeWindow,
            [rows.window_row(i, p, links[p]["id"], self.now) for i, p in pairs if i % 4 == 0],
        )
        # One bulk append to the audit chain per chunk (hashes computed in Python).
        audit.chain_rows(
            connection,
            [e for i, p in pairs for e in rows.audit_rows(i, p, links[p]["id"], admin, self.now)],
        )
        self._count(len(pairs), len(flat), len(submissions))

    def _count(self, partners: int, certificates: int, submissions: int) -> None:
        counts = self.seeded.counts if self.seeded else {}
        for name, n in (
            ("partners", partners),
            ("partner_certificates", certificates),
            ("submissions", submissions),
            ("share_links", partners),
            ("audit_events", partners * rows.AUDIT_PER_PARTNER),
        ):
            counts[name] = counts.get(name, 0) + n


def _identity_for(i: int, identity_ids: list[int]) -> int:
    """Even partners trade with the first identity; odd ones with the others in turn."""
    if i % 2 == 0 or len(identity_ids) == 1:
        return identity_ids[0]
    return identity_ids[1 + (i // 2) % (len(identity_ids) - 1)]


def _activation_done(certificate_id: int, due: datetime, now: datetime) -> dict[str, Any]:
    """The activation notice of a certificate in force long ago: already performed."""
    return {
        "key": f"{ACTIVATED}:{certificate_id}",
        "kind": ACTIVATED,
        "due_at": due,
        "payload": {"certificate_id": certificate_id},
        "done_at": due,
        "done_by": "bench",
        "attempts": 1,
        "created_at": due,
    }


def _insert(connection: Connection, model: Any, values: list[dict[str, Any]]) -> None:
    if values:
        connection.execute(insert(model), values)
