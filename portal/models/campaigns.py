"""Campaigns (our rotations, requests for partners' certificates) and the partners reached."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.campaigns import Asks, asks_of
from portal.domain.vocab import CampaignKind
from portal.models.base import Base, BigIntId, UTCDateTime, one_of
from portal.timeutil import utcnow

if TYPE_CHECKING:
    from portal.models.accounts import User
    from portal.models.certificates import Certificate
    from portal.models.directory import Identity, Partner
    from portal.models.exchange import ShareLink


class Campaign(Base):
    """Many partners of one identity asked at once, each followed on a board.

    A rotation moves the identity to one of its certificates at T (one campaign per
    certificate); a partner-certificate campaign asks partners for their new certificates,
    in force by T. What each partner did is derived from facts recorded elsewhere (the
    link's counters, acknowledgements, submissions), never copied.
    """

    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("certificate_id"),
        Index(None, "identity_id"),
        CheckConstraint(one_of("kind", CampaignKind), name="kind"),
        # A rotation names our certificate; a request for partners' certificates names none.
        CheckConstraint(
            f"(kind = '{CampaignKind.ROTATION.value}') = (certificate_id IS NOT NULL)",
            name="certificate_only_for_rotation",
        ),
        CheckConstraint(
            f"kind = '{CampaignKind.ROTATION.value}' OR request_upload", name="request_asks_upload"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default=CampaignKind.ROTATION.value)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="CASCADE")
    )
    # T: the switch to our certificate, or when partners' new certificates should be in force.
    activate_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_upload: Mapped[bool] = mapped_column(default=False)
    # A partner-certificate campaign: it asked partners whose certificate in force expired
    # before this moment (or had none); None: every partner of the identity.
    expiring_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # As typed by staff: text in the email, never a link.
    message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity: Mapped[Identity] = relationship()
    certificate: Mapped[Certificate | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def asks(self) -> Asks:
        """What the campaign asks of each partner."""
        return asks_of(self.kind, self.request_upload)

    @property
    def is_rotation(self) -> bool:
        """Whether it moves us to a new certificate (else it asks for partners' certificates)."""
        return self.kind == CampaignKind.ROTATION.value


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
