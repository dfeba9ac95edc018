"""Our AS2 identities and the trading partners who trade with them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.vocab import (
    Environment,
)
from portal.models.base import Base, UTCDateTime, one_of
from portal.timeutil import utcnow


class Identity(Base):
    """One of our AS2 stations; its certificates carry private keys."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("environment", "as2_id"),
        # Target of the partners' composite key: a partner shares its identity's environment.
        UniqueConstraint("id", "environment"),
        CheckConstraint(one_of("environment", Environment), name="environment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    as2_id: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(16), default=Environment.PRODUCTION.value)
    organisation: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    partners: Mapped[list[Partner]] = relationship(
        foreign_keys="Partner.identity_id", viewonly=True, order_by="Partner.name"
    )


class Partner(Base):
    """A trading partner; its certificates have no keys here."""

    __tablename__ = "partners"
    # Server defaults (the language) are read when first used, not RETURNed by every INSERT.
    __mapper_args__ = {"eager_defaults": False}
    __table_args__ = (
        UniqueConstraint("environment", "as2_id"),
        ForeignKeyConstraint(
            ["identity_id", "environment"],
            ["identities.id", "identities.environment"],
            onupdate="CASCADE",
            ondelete="RESTRICT",
        ),
        CheckConstraint(one_of("environment", Environment), name="environment"),
        # The lists: by name (id breaks ties), all partners or one identity's. The AS2 ID
        # rides along so a search on SQLite filters in the index, not row by row.
        Index("ix_partners_name_id", "name", "id", "as2_id"),
        Index("ix_partners_identity_name", "identity_id", "name", "id", "as2_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    as2_id: Mapped[str] = mapped_column(String(128))
    identity_id: Mapped[int] = mapped_column()
    environment: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The language of the emails to the partner (portal.domain.languages); staff set it.
    # No Python-side default: an INSERT that does not name it lets the database say "en".
    # Deferred: only emails read it (loaded with the partner where many are sent at once),
    # and code reading partners at older schemas (tests/test_migrations.py) never names it.
    language: Mapped[str] = mapped_column(String(8), server_default="en", deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Joined on the id alone; the environment half of the key is copied by the service.
    identity: Mapped[Identity] = relationship(foreign_keys=[identity_id])
    contacts: Mapped[list[PartnerContact]] = relationship(
        back_populates="partner",
        cascade="all, delete-orphan",
        order_by="PartnerContact.id",
    )

    @property
    def contact_emails(self) -> list[str]:
        """The partner's contact addresses in the order they were entered."""
        return [contact.email for contact in self.contacts]


# Search (lower(column) LIKE '%text%') on PostgreSQL: GIN trigram indexes (pg_trgm; the
# migration installs it). Other databases go without (SQLite reads ix_partners_name_id).
for _column in (Partner.name, Partner.as2_id):
    Index(
        f"ix_partners_{_column.key}_trgm",
        func.lower(_column).label(f"lower_{_column.key}"),
        postgresql_using="gin",
        postgresql_ops={f"lower_{_column.key}": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


class PartnerContact(Base):
    """An email address that receives a partner's links and notices."""

    __tablename__ = "partner_contacts"
    __table_args__ = (UniqueConstraint("partner_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))

    partner: Mapped[Partner] = relationship(back_populates="contacts")
