"""Rotation campaigns and the partners each one reaches."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    ForeignKey,
    Index,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, BigIntId, UTCDateTime
from portal.timeutil import utcnow

if TYPE_CHECKING:
    from portal.models.accounts import User
    from portal.models.certificates import Certificate
    from portal.models.directory import Identity, Partner
    from portal.models.exchange import ShareLink


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
