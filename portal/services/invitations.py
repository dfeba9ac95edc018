"""The .ics invitation a campaign's emails carry: the switch, as a calendar event.

Written by the one iCalendar writer (portal.domain.ics.window_invitation), with a UID
stable for the campaign and the partner, so the first email, every reminder and resend
update one calendar entry instead of adding new ones. METHOD:PUBLISH: the event carries no
organiser or attendees, so there is nothing to reply to (a REQUEST would need them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain.ics import window_invitation
from portal.domain.vocab import WindowStatus
from portal.models import Campaign, CampaignPartner, Partner, ShareLink
from portal.services.outbox import Attachment

FILENAME = "as2-certificate-switch.ics"
CONTENT_TYPE = "text/calendar; method=PUBLISH"


def campaign_uid(campaign: Campaign, partner: Partner) -> str:
    """The invitation's UID: one per campaign and partner, the same in every email."""
    # The certificate's fingerprint makes it unique beyond this portal's own numbering.
    if campaign.certificate is None:
        raise ValueError("only a rotation has a switch to invite to")
    unique = campaign.certificate.sha256[:16]
    return f"campaign-{campaign.id}-partner-{partner.id}-{unique}@as2-portal"


def uid_for_link(session: Session, link: ShareLink) -> str | None:
    """The campaign UID for LINK's partner when LINK was sent by a rotation, else None.

    The partner page's .ics then updates the calendar entry the campaign's emails made,
    instead of adding a second one for the same switch.
    """
    campaign = session.scalar(
        select(Campaign)
        .join(CampaignPartner, CampaignPartner.campaign_id == Campaign.id)
        .where(CampaignPartner.link_id == link.id)
    )
    if campaign is None or campaign.certificate is None:
        return None
    return campaign_uid(campaign, link.partner)


def campaign_invitation(
    campaign: Campaign,
    partner: Partner,
    *,
    stamp: datetime,
    status: str = WindowStatus.PROPOSED.value,
) -> Attachment:
    """The .ics for PARTNER's switch in CAMPAIGN (DTSTART its activate_at, in UTC)."""
    content = window_invitation(
        uid=campaign_uid(campaign, partner),
        starts_at=campaign.activate_at,
        partner_zone=partner.timezone,
        our_name=campaign.identity.organisation,
        our_as2_id=campaign.identity.as2_id,
        partner_name=partner.name,
        partner_as2_id=partner.as2_id,
        status=status,
        now=stamp,
    )
    return Attachment(FILENAME, CONTENT_TYPE, content.decode("utf-8"))
