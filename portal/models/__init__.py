"""Typed SQLAlchemy models, one module per part of the domain.

Invariants live in the database as constraints; every model is importable from here.
"""

from portal.models.accounts import ApiToken, RecoveryCode, StaffSession, User
from portal.models.audit import AuditEvent
from portal.models.base import NAMING_CONVENTION, Base, BigIntId, UTCDateTime, one_of
from portal.models.campaigns import Campaign, CampaignPartner
from portal.models.certificates import Certificate, ConfigRevision, PendingKey
from portal.models.delivery import (
    OutboxMessage,
    SideEffect,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from portal.models.directory import Identity, Partner, PartnerContact
from portal.models.exchange import Acknowledgement, ChangeWindow, ShareLink, Submission

__all__ = [
    "NAMING_CONVENTION",
    "Acknowledgement",
    "ApiToken",
    "AuditEvent",
    "Base",
    "BigIntId",
    "Campaign",
    "CampaignPartner",
    "Certificate",
    "ChangeWindow",
    "ConfigRevision",
    "Identity",
    "OutboxMessage",
    "Partner",
    "PartnerContact",
    "PendingKey",
    "RecoveryCode",
    "ShareLink",
    "SideEffect",
    "StaffSession",
    "Submission",
    "UTCDateTime",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSubscription",
    "one_of",
]
