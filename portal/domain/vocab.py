"""The portal's closed sets of values: usages, environments and the states of its records.

Each enum is the one source of its values: the database's CHECK constraints, the CLI's
choices, the forms' select boxes and the templates are built from it. Staff roles live
with their permissions in portal.domain.roles.
"""

from __future__ import annotations

from enum import StrEnum


def values_of(enum: type[StrEnum]) -> tuple[str, ...]:
    """The values of ENUM as plain strings, in its order (for choices, CHECKs, messages)."""
    return tuple(member.value for member in enum)


class Usage(StrEnum):
    """What a certificate is used for in AS2."""

    SIGNING = "signing"
    ENCRYPTION = "encryption"
    BOTH = "both"

    @property
    def covers(self) -> tuple[Usage, ...]:
        """The usages a certificate for this one serves: BOTH is signing and encryption."""
        if self is Usage.BOTH:
            return (Usage.SIGNING, Usage.ENCRYPTION)
        return (self,)


# The usages a certificate can be in force for: "both" is not one of its own.
USAGES_IN_FORCE: tuple[Usage, ...] = Usage.BOTH.covers


def usages_served(usage: str) -> tuple[Usage, ...]:
    """The usages a certificate stored with USAGE serves (ValueError for an unknown one)."""
    return Usage(usage).covers


def usage_words(usage: str) -> str:
    """How a certificate usage reads in a sentence: "signing and encryption" for "both"."""
    try:
        return " and ".join(usages_served(usage))
    except ValueError:
        return usage


class Environment(StrEnum):
    """Where an AS2 station and its partners trade."""

    PRODUCTION = "production"
    TEST = "test"


class SubmissionStatus(StrEnum):
    """Where a partner's submitted certificate stands: received, then approved or rejected."""

    RECEIVED = "received"
    APPROVED = "approved"
    REJECTED = "rejected"


class WindowStatus(StrEnum):
    """A change window: proposed by one side, accepted by the other, superseded by a newer."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"


class WindowProposer(StrEnum):
    """Which side proposed a change window."""

    PARTNER = "partner"
    STAFF = "staff"


class CampaignKind(StrEnum):
    """What a campaign asks of the partners it reaches."""

    # Install our new certificate by T (and, when asked, send theirs).
    ROTATION = "rotation"
    # Send us their new certificate, in force by T (their current one expires soon).
    PARTNER_CERTIFICATES = "partner_certificates"

    @property
    def label(self) -> str:
        """The kind as a list shows it."""
        return "Our new certificate" if self is CampaignKind.ROTATION else "Partners' certificates"


class OutboxKind(StrEnum):
    """How an outbox message is delivered."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class WebhookEvent(StrEnum):
    """What a webhook delivery announces; admins subscribe endpoints to all but TEST."""

    CERTIFICATE_SCHEDULED = "certificate.scheduled"
    CERTIFICATE_ACTIVATED = "certificate.activated"
    CERTIFICATE_ROLLED_BACK = "certificate.rolled_back"
    SUBMISSION_RECEIVED = "submission.received"
    SUBMISSION_APPROVED = "submission.approved"
    SUBMISSION_REJECTED = "submission.rejected"
    LINK_ACKNOWLEDGED = "link.acknowledged"
    TEST = "webhook.test"  # the "send test event" button; sent to one endpoint, never chosen


# The events an endpoint can subscribe to, in the order offered.
SUBSCRIBABLE_EVENTS: tuple[WebhookEvent, ...] = tuple(
    event for event in WebhookEvent if event is not WebhookEvent.TEST
)
