"""What passes through a partner's link: the link, uploads, change windows, acknowledgements."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.vocab import (
    SubmissionStatus,
    Usage,
    WindowProposer,
    WindowStatus,
)
from portal.models.base import Base, UTCDateTime, one_of
from portal.timeutil import utcnow

if TYPE_CHECKING:
    from portal.models.directory import Partner


class ShareLink(Base):
    """A signed, expiring link a partner uses without an account."""

    __tablename__ = "share_links"
    __table_args__ = (
        CheckConstraint("can_download OR can_upload", name="has_purpose"),
        CheckConstraint("max_uploads >= 0", name="max_uploads_non_negative"),
        CheckConstraint(
            "uploads_used >= 0 AND uploads_used <= max_uploads", name="uploads_in_limit"
        ),
        # A partner's links, newest first.
        Index("ix_share_links_partner_created", "partner_id", "created_at", "id"),
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
        CheckConstraint(one_of("status", SubmissionStatus), name="status"),
        CheckConstraint(one_of("usage", Usage), name="usage"),
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


class ChangeWindow(Base):
    """A proposed (or agreed) moment for both sides to switch certificates."""

    __tablename__ = "change_windows"
    __table_args__ = (
        CheckConstraint(one_of("proposed_by", WindowProposer), name="proposed_by"),
        CheckConstraint(one_of("status", WindowStatus), name="status"),
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
