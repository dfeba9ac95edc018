"""Certificates (ours with encrypted keys, partners' public only) and keys awaiting a CA."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.vocab import (
    Usage,
)
from portal.models.base import Base, UTCDateTime, one_of
from portal.timeutil import utcnow

if TYPE_CHECKING:
    from portal.models.directory import Identity, Partner


class Certificate(Base):
    """A public certificate of an identity (with its encrypted key) or of a partner."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint("(identity_id IS NULL) <> (partner_id IS NULL)", name="one_owner"),
        CheckConstraint(one_of("usage", Usage), name="usage"),
        CheckConstraint(
            "encrypted_private_key IS NULL OR identity_id IS NOT NULL", name="key_only_for_identity"
        ),
        CheckConstraint("not_before < not_after", name="validity_order"),
        UniqueConstraint("identity_id", "usage", "sha256"),
        UniqueConstraint("partner_id", "usage", "sha256"),
        Index(None, "sha256"),
        Index(None, "partner_id"),
        # The dashboard and the expiring list (portal.services.expiring): the in-force rule
        # probes an owner's certificates; expiry ranges and upcoming activations are ranges.
        # Partial: most certificates are partners', and SQLite's statistics over an index
        # full of NULLs would make it look useless to the planner.
        Index(
            None,
            "identity_id",
            sqlite_where=text("identity_id IS NOT NULL"),
            postgresql_where=text("identity_id IS NOT NULL"),
        ),
        Index(None, "not_after"),
        Index(None, "activate_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    usage: Mapped[str] = mapped_column(String(16))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # CA certificates above this one (concatenated PEM, its issuer first), empty for
    # self-signed. A partner's holds exactly the intermediates it was sent with (no root).
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    sha1: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    key_type: Mapped[str] = mapped_column(String(16))
    key_size: Mapped[int | None]
    signature_hash: Mapped[str | None] = mapped_column(String(32))
    # How the certificate came to us: generated, imported, csr, uploaded (by a partner), staff.
    source: Mapped[str] = mapped_column(String(16))
    # AES-GCM blob from portal.domain.keys; never a plaintext key.
    encrypted_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    activate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Four eyes: a schedule proposed by one user waits here until another approves it.
    proposed_activate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity: Mapped[Identity | None] = relationship()
    partner: Mapped[Partner | None] = relationship()


class PendingKey(Base):
    """A private key of ours waiting for its CA-signed certificate (a CSR was issued)."""

    __tablename__ = "pending_keys"
    __table_args__ = (
        CheckConstraint(one_of("usage", Usage), name="usage"),
        Index(None, "identity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    usage: Mapped[str] = mapped_column(String(16))
    key_size: Mapped[int]
    csr_pem: Mapped[str] = mapped_column(Text)
    # AES-GCM blob from portal.domain.keys; never a plaintext key.
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    identity: Mapped[Identity] = relationship()


class ConfigRevision(Base):
    """One row counting changes to certificates, partners and identities.

    Database triggers (migration 0014) bump `value` in the transaction of every change, so
    a process may cache what the config API answers for as long as the value stays the same.
    """

    __tablename__ = "config_revision"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
