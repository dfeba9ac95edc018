"""Typed SQLAlchemy models. Invariants live in the database as constraints."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from portal.domain.roles import Role
from portal.domain.vocab import (
    SUBSCRIBABLE_EVENTS,
    Environment,
    OutboxKind,
    SubmissionStatus,
    Usage,
    WebhookEvent,
    WindowProposer,
    WindowStatus,
)
from portal.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: Iterable[StrEnum]) -> str:
    """SQL for a CHECK that COLUMN holds one of VALUES (an enum of ours, or some of its members)."""
    quoted = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone type, so values go in as naive UTC text and come back
    tagged as UTC; naive input is refused so a local time can never slip in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A staff account.

    It answers what Flask-Login asks of a user (is_active, is_authenticated,
    is_anonymous, get_id) itself: the models import nothing from Flask.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_one_of("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Part of the Flask-Login id: rotating it signs out every session of the user.
    session_token: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        """Disabled users cannot sign in and lose their sessions."""
        return self.is_enabled

    @property
    def is_authenticated(self) -> bool:
        """A loaded user is a signed-in one while enabled (anonymous visitors are not Users)."""
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        """Never: anonymous visitors are Flask-Login's own AnonymousUserMixin."""
        return False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session; includes the rotating session token."""
        return f"{self.id}:{self.session_token}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class StaffSession(Base):
    """One sign-in of a staff user: the server's word on whether a session cookie still works.

    The cookie carries a random id; only its SHA-256 is stored. Signing out, or the
    lifetime passing, ends the session here, so a copied cookie dies with it.
    """

    __tablename__ = "staff_sessions"
    __table_args__ = (UniqueConstraint("token_hash"), Index(None, "user_id", "ended_at"))

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended: signed_out, password_changed, disabled, ...
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class ApiToken(Base):
    """A named credential for programs calling the API, with the scopes it grants.

    The secret is shown once when the token is made; only its SHA-256 is stored.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("token_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Scope values (portal.domain.scopes), sorted; the service accepts only known ones.
    scopes: Mapped[list[str]] = mapped_column(JSON)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()


class Identity(Base):
    """One of our AS2 stations; its certificates carry private keys."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("environment", "as2_id"),
        # Target of the partners' composite key: a partner shares its identity's environment.
        UniqueConstraint("id", "environment"),
        CheckConstraint(_one_of("environment", Environment), name="environment"),
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
    __table_args__ = (
        UniqueConstraint("environment", "as2_id"),
        ForeignKeyConstraint(
            ["identity_id", "environment"],
            ["identities.id", "identities.environment"],
            onupdate="CASCADE",
            ondelete="RESTRICT",
        ),
        CheckConstraint(_one_of("environment", Environment), name="environment"),
        Index(None, "identity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    as2_id: Mapped[str] = mapped_column(String(128))
    identity_id: Mapped[int] = mapped_column()
    environment: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
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


class PartnerContact(Base):
    """An email address that receives a partner's links and notices."""

    __tablename__ = "partner_contacts"
    __table_args__ = (UniqueConstraint("partner_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))

    partner: Mapped[Partner] = relationship(back_populates="contacts")


class Certificate(Base):
    """A public certificate of an identity (with its encrypted key) or of a partner."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint("(identity_id IS NULL) <> (partner_id IS NULL)", name="one_owner"),
        CheckConstraint(_one_of("usage", Usage), name="usage"),
        CheckConstraint(
            "encrypted_private_key IS NULL OR identity_id IS NOT NULL", name="key_only_for_identity"
        ),
        CheckConstraint("not_before < not_after", name="validity_order"),
        UniqueConstraint("identity_id", "usage", "sha256"),
        UniqueConstraint("partner_id", "usage", "sha256"),
        Index(None, "sha256"),
        Index(None, "partner_id"),
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
        CheckConstraint(_one_of("usage", Usage), name="usage"),
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


class ShareLink(Base):
    """A signed, expiring link a partner uses without an account."""

    __tablename__ = "share_links"
    __table_args__ = (
        CheckConstraint("can_download OR can_upload", name="has_purpose"),
        CheckConstraint("max_uploads >= 0", name="max_uploads_non_negative"),
        CheckConstraint(
            "uploads_used >= 0 AND uploads_used <= max_uploads", name="uploads_in_limit"
        ),
        Index(None, "partner_id"),
    )

    # Opaque random id; the URL token is a signature over it.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    can_download: Mapped[bool] = mapped_column(default=True)
    can_upload: Mapped[bool] = mapped_column(default=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_uploads: Mapped[int] = mapped_column(default=3)
    uploads_used: Mapped[int] = mapped_column(default=0)
    opened_count: Mapped[int] = mapped_column(default=0)
    download_count: Mapped[int] = mapped_column(default=0)
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[Partner] = relationship()


class Submission(Base):
    """A partner certificate uploaded through a link or by staff on the partner's behalf."""

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_one_of("status", SubmissionStatus), name="status"),
        CheckConstraint(_one_of("usage", Usage), name="usage"),
        CheckConstraint(
            f"status <> '{SubmissionStatus.REJECTED.value}' OR rejection_reason IS NOT NULL",
            name="rejection_has_reason",
        ),
        Index(None, "partner_id"),
        Index(None, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    usage: Mapped[str] = mapped_column(String(16))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # The intermediate CA certificates sent with it (concatenated PEM, the certificate's issuer
    # first, validated as a chain, no root); empty when none. Copied to the certificate row.
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=SubmissionStatus.RECEIVED.value)
    proposed_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proposed_timezone: Mapped[str | None] = mapped_column(String(64))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # With four eyes for every approval, the first approver's decision waits here.
    first_approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    first_approved_activate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[Partner] = relationship()


class AuditEvent(Base):
    """An append-only record of something a person, a partner or the system did."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "occurred_at"),
        Index("ix_audit_events_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who acted, kept as text so the record survives the user being deleted.
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))


class ChangeWindow(Base):
    """A proposed (or agreed) moment for both sides to switch certificates."""

    __tablename__ = "change_windows"
    __table_args__ = (
        CheckConstraint(_one_of("proposed_by", WindowProposer), name="proposed_by"),
        CheckConstraint(_one_of("status", WindowStatus), name="status"),
        Index(None, "partner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64))
    proposed_by: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=WindowStatus.PROPOSED.value)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Acknowledgement(Base):
    """A partner's word that they installed our certificate."""

    __tablename__ = "acknowledgements"
    __table_args__ = (Index(None, "partner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    # Our newest certificate when they acknowledged: what they say they installed.
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL")
    )
    installed_on: Mapped[date | None] = mapped_column(Date)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """An email written in the same transaction as its cause, delivered after commit."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_one_of("kind", OutboxKind), name="kind"),
        UniqueConstraint("dedupe_key"),
        Index(None, "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=OutboxKind.EMAIL.value)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    # Plain text; at most one outbox.LINK_MARK, where the URL of link_id goes when sent.
    body: Mapped[str] = mapped_column(Text)
    # HTML from the email's .html template, escaped, with the same LINK_MARK; None: made from
    # the plain text at delivery.
    html_body: Mapped[str | None] = mapped_column(Text)
    # The one link whose URL the message carries: set by the composer, never read from text.
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    # Same key, same message: queuing twice is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # Unsent: why the last try failed. Sent: the recipients the server refused, if any.
    last_error: Mapped[str | None] = mapped_column(Text)
    # After a failed try, not before this (exponential backoff); None: at the next run.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SideEffect(Base):
    """Something to do once when its time comes; the unique key makes it happen only once."""

    __tablename__ = "side_effects"
    __table_args__ = (
        UniqueConstraint("key"),
        Index("ix_side_effects_due", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which runner did it, for the operator's eyes.
    done_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEndpoint(Base):
    """A URL an admin registered to receive signed JSON about chosen events.

    The signing secret is shown once; it is kept encrypted under the key ring (the portal
    must sign with it, so it cannot be a hash). Removing an endpoint keeps it and its
    delivery log; nothing new is sent to it.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # AES-GCM blob from portal.domain.keys, bound to this row's id; never the plain secret.
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()
    subscriptions: Mapped[list[WebhookSubscription]] = relationship(
        cascade="all, delete-orphan", order_by="WebhookSubscription.event"
    )

    @property
    def events(self) -> list[str]:
        """The events the endpoint receives, sorted."""
        return sorted(subscription.event for subscription in self.subscriptions)


class WebhookSubscription(Base):
    """One event an endpoint receives."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        PrimaryKeyConstraint("endpoint_id", "event"),
        CheckConstraint(_one_of("event", SUBSCRIBABLE_EVENTS), name="event"),
        Index(None, "event"),
    )

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))


class WebhookDelivery(Base):
    """One event for one endpoint, written with its cause, sent by the runner until it lands.

    A runner claims it with a compare-and-swap on claimed_until (a lease), posts it outside
    any transaction, then records the outcome; failures wait next_attempt_at (exponential
    backoff) and after MAX_ATTEMPTS wait for an admin's Retry. Never deleted.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("event", WebhookEvent), name="event"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),
        Index(None, "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    # The event's facts (AS2 IDs, fingerprints, times): never a private key or a link token.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # The lease of the runner sending it right now (another runner leaves it alone until then).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    endpoint: Mapped[WebhookEndpoint] = relationship()


class Campaign(Base):
    """Rotating one identity to one of its certificates at a moment: every partner reached.

    One campaign per certificate (unique). What each partner did is derived from facts
    recorded elsewhere (the link's counters, acknowledgements, submissions), never copied.
    """

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("certificate_id"), Index(None, "identity_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"))
    activate_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_upload: Mapped[bool] = mapped_column(default=False)
    # As typed by staff: text in the email, never a link.
    message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity: Mapped[Identity] = relationship()
    certificate: Mapped[Certificate] = relationship()
    created_by: Mapped[User | None] = relationship()


class CampaignPartner(Base):
    """One partner of a campaign: its link and its latest email (none when unreachable)."""

    __tablename__ = "campaign_partners"
    __table_args__ = (
        UniqueConstraint("campaign_id", "partner_id"),
        Index(None, "partner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    # The partner had no contact email when last emailed: a link, but no message.
    unreachable: Mapped[bool] = mapped_column(default=False)
    message_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[Partner] = relationship()
    link: Mapped[ShareLink | None] = relationship()
