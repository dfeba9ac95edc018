"""Webhooks: endpoints admins register, events other services emit, deliveries the runner posts.

`emit(session, event, data, now=)` is what other services call: it writes one delivery
per endpoint subscribed to EVENT, in the caller's transaction, so a delivery exists exactly
when the change that caused it was committed. Nothing here talks to the network except
through the resolver it is given (registration) and portal.services.webhook_http (delivery).

Delivery is made of steps that only flush; portal.jobs runs them. A runner claims a due
delivery with a compare-and-swap that takes a lease (claimed_until) and counts an attempt,
commits, posts outside any transaction, then records the outcome, conditional on still
holding the lease. Two runners never post the same delivery; a runner that dies after
posting leaves the lease to expire and the delivery is posted again (at least once, with
the same id, so receivers can recognise a repeat). A failure waits exponentially longer;
after MAX_ATTEMPTS it waits for an admin's Retry. Deliveries are never deleted.

The signing secret is shown once, at creation, and stored encrypted under the key ring.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, true, update
from sqlalchemy.orm import Session

from portal.domain import webhooks as rules
from portal.domain.keys import KeyRing, KeyRingError
from portal.domain.vocab import SUBSCRIBABLE_EVENTS, WebhookEvent
from portal.domain.webhooks import Target, WebhookUrlError
from portal.models import (
    Certificate,
    Partner,
    Submission,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from portal.services import audit
from portal.services.actor import Actor
from portal.services.errors import ConflictError, NotFoundError, ServiceError
from portal.services.pagination import Page, paginate

MAX_ATTEMPTS = 8  # with backoff 1, 2, 4, ... 64 minutes: about two hours of tries
LEASE = timedelta(minutes=5)  # far longer than any attempt (PORTAL_WEBHOOK_TIMEOUT)
PRIVATE_HINT = "set PORTAL_WEBHOOK_ALLOW_PRIVATE=true to allow it"

Resolve = Callable[[str, int], list[str]]


class DeliveryState(StrEnum):
    """Where a delivery is on its way out."""

    WAITING = "waiting"  # not tried yet (or an admin asked for a retry)
    RETRYING = "retrying"  # the last attempt failed; the runner tries again later
    DELIVERED = "delivered"
    FAILED = "failed"  # MAX_ATTEMPTS failed; waits for an admin's Retry


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint just registered and its secret, which is never shown again."""

    endpoint: WebhookEndpoint
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Attempt:
    """A delivery claimed by one runner: what to post, and the claim that proves it is ours."""

    delivery_id: int
    endpoint_id: int
    url: str
    event: str
    payload: bytes
    claim: str
    encrypted_secret: bytes = field(repr=False)


# Registration -----------------------------------------------------------------------------


def resolve_host(host: str, port: int) -> list[str]:
    """Every address HOST resolves to (the system resolver); WebhookUrlError when none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise WebhookUrlError(f"The host {host} does not resolve ({reason}).") from None
    return sorted({str(info[4][0]) for info in infos})


def check_destination(
    url: str, *, allow_private: bool, resolve: Resolve = resolve_host
) -> tuple[Target, list[str]]:
    """Where URL points and the addresses it resolves to; WebhookUrlError if refused.

    Unless ALLOW_PRIVATE, every address must be public: one private answer refuses all.
    """
    target = rules.parse_url(url)
    addresses = resolve(target.host, target.port)
    if not addresses:
        raise WebhookUrlError(f"The host {target.host} does not resolve to any address.")
    if not allow_private:
        for address in addresses:
            problem = rules.address_problem(address)
            if problem is not None:
                raise WebhookUrlError(f"Refused {target.host}: {problem}; {PRIVATE_HINT}.")
    return target, addresses


def parse_events(values: Iterable[str]) -> list[str]:
    """Known event names, sorted, without repeats; ServiceError for none or unknown ones."""
    wanted = {value.strip() for value in values if value.strip()}
    if not wanted:
        raise ServiceError("Choose at least one event.", field="events")
    known = subscribable_events()
    unknown = wanted - set(known)
    if unknown:
        raise ServiceError(
            f"Unknown event {', '.join(sorted(unknown))}; use {', '.join(known)}.",
            field="events",
        )
    return sorted(wanted)


def subscribable_events() -> tuple[str, ...]:
    """The event names an endpoint can subscribe to, in the order offered."""
    return tuple(event.value for event in SUBSCRIBABLE_EVENTS)


def create(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    url: str,
    events: Iterable[str],
    *,
    now: datetime,
    allow_private: bool,
    secret: str | None = None,
    resolve: Resolve = resolve_host,
) -> NewEndpoint:
    """Register URL for EVENTS; the secret (given, or generated) is in the answer only."""
    url = url.strip()
    try:
        check_destination(url, allow_private=allow_private, resolve=resolve)
    except WebhookUrlError as error:
        raise ServiceError(str(error), field="url") from None
    wanted = parse_events(events)
    try:
        secret = rules.new_secret() if secret is None else rules.check_secret(secret)
    except ValueError as error:
        raise ServiceError(str(error), field="secret") from None
    endpoint = WebhookEndpoint(
        url=url,
        encrypted_secret=b"",
        created_at=now,
        created_by_id=actor.user_id,
        subscriptions=[WebhookSubscription(event=event) for event in wanted],
    )
    session.add(endpoint)
    session.flush()  # the id binds the encrypted secret to this row
    endpoint.encrypted_secret = keyring.encrypt(secret.encode(), associated_data=_aad(endpoint.id))
    session.flush()
    audit.record(
        session, actor, "webhook.created", object_type="webhook_endpoint", object_id=endpoint.id,
        summary=f"Registered webhook #{endpoint.id} {url[:200]} for {', '.join(wanted)}",
        details={"url": url, "events": wanted},
    )  # fmt: skip
    return NewEndpoint(endpoint, secret)


def _aad(endpoint_id: int) -> bytes:
    return f"portal/webhook-secret/{endpoint_id}".encode()


def decrypt_secret(keyring: KeyRing, endpoint_id: int, blob: bytes) -> str:
    """The endpoint's signing secret; ServiceError if the key ring cannot open it."""
    try:
        return keyring.decrypt(blob, associated_data=_aad(endpoint_id)).decode()
    except KeyRingError as error:
        raise ServiceError(f"The webhook secret cannot be decrypted: {error}") from None


def rotate_secrets(session: Session, keyring: KeyRing) -> tuple[int, int]:
    """Re-encrypt every webhook secret under the newest key: (re-encrypted, total)."""
    rotated = total = 0
    for endpoint in session.scalars(select(WebhookEndpoint)):
        total += 1
        if keyring.needs_rotation(endpoint.encrypted_secret):
            secret = decrypt_secret(keyring, endpoint.id, endpoint.encrypted_secret)
            endpoint.encrypted_secret = keyring.encrypt(
                secret.encode(), associated_data=_aad(endpoint.id)
            )
            rotated += 1
    session.flush()
    return rotated, total


def list_endpoints(session: Session, *, page: int, per_page: int) -> Page[WebhookEndpoint]:
    """Every endpoint, removed ones included, oldest first."""
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    return paginate(session, stmt, page=page, per_page=per_page)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint with ENDPOINT_ID; NotFoundError when there is none."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"No webhook {endpoint_id}.")
    return endpoint


def is_active(endpoint: WebhookEndpoint) -> bool:
    """Whether ENDPOINT still receives events."""
    return endpoint.removed_at is None


def remove(session: Session, actor: Actor, endpoint_id: int, *, now: datetime) -> WebhookEndpoint:
    """Stop sending to the endpoint; its log stays. ConflictError when removed already."""
    endpoint = get_endpoint(session, endpoint_id)
    if endpoint.removed_at is not None:
        raise ConflictError(f"Webhook #{endpoint.id} was removed already.")
    endpoint.removed_at = now
    session.flush()
    audit.record(
        session, actor, "webhook.removed", object_type="webhook_endpoint", object_id=endpoint.id,
        summary=f"Removed webhook #{endpoint.id} {endpoint.url[:200]}",
        details={"url": endpoint.url},
    )  # fmt: skip
    return endpoint


# Events -----------------------------------------------------------------------------------


def emit(
    session: Session,
    event: WebhookEvent,
    data: Mapping[str, Any],
    *,
    now: datetime,
    occurred_at: datetime | None = None,
) -> int:
    """Queue EVENT with DATA for every active endpoint subscribed to it; how many were queued."""
    endpoint_ids = list(
        session.scalars(
            select(WebhookSubscription.endpoint_id)
            .join(WebhookEndpoint)
            .where(WebhookSubscription.event == event.value, WebhookEndpoint.removed_at.is_(None))
            .order_by(WebhookSubscription.endpoint_id)
        )
    )
    for endpoint_id in endpoint_ids:
        _queue(session, endpoint_id, event, data, now=now, occurred_at=occurred_at or now)
    if endpoint_ids:
        session.flush()
    return len(endpoint_ids)


def _queue(
    session: Session,
    endpoint_id: int,
    event: WebhookEvent,
    data: Mapping[str, Any],
    *,
    now: datetime,
    occurred_at: datetime,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        endpoint_id=endpoint_id,
        event=event.value,
        data=dict(data),
        occurred_at=occurred_at,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(delivery)
    return delivery


def send_test(
    session: Session, actor: Actor, endpoint: WebhookEndpoint, *, now: datetime
) -> WebhookDelivery:
    """Queue a `webhook.test` delivery to ENDPOINT alone; the next run posts it."""
    if endpoint.removed_at is not None:
        raise ServiceError(f"Webhook #{endpoint.id} was removed; it receives nothing.")
    data = {
        "message": "A test event from the certificate exchange portal.",
        "endpoint_id": endpoint.id,
    }
    delivery = _queue(session, endpoint.id, WebhookEvent.TEST, data, now=now, occurred_at=now)
    session.flush()
    audit.record(
        session, actor, "webhook.test_queued", object_type="webhook_endpoint",
        object_id=endpoint.id, summary=f"Queued test delivery #{delivery.id} to webhook "
        f"#{endpoint.id}", details={"delivery_id": delivery.id},
    )  # fmt: skip
    return delivery


# The delivery log -------------------------------------------------------------------------


def delivery_state(delivery: WebhookDelivery) -> DeliveryState:
    """WAITING, RETRYING, DELIVERED or FAILED."""
    if delivery.delivered_at is not None:
        return DeliveryState.DELIVERED
    if delivery.attempts >= MAX_ATTEMPTS:
        return DeliveryState.FAILED
    if delivery.last_error is not None:
        return DeliveryState.RETRYING
    return DeliveryState.WAITING


def list_deliveries(
    session: Session, endpoint: WebhookEndpoint, *, page: int, per_page: int
) -> Page[WebhookDelivery]:
    """The endpoint's deliveries, newest first."""
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
    )
    return paginate(session, stmt, page=page, per_page=per_page)


def get_delivery(session: Session, endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    """ENDPOINT's delivery DELIVERY_ID; NotFoundError when it has none such."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFoundError(f"No delivery {delivery_id} for webhook #{endpoint.id}.")
    return delivery


def retry(session: Session, actor: Actor, delivery: WebhookDelivery, *, now: datetime) -> None:
    """Put a failed delivery back for the runner: its attempts start again from zero."""
    if delivery_state(delivery) is not DeliveryState.FAILED:
        raise ServiceError(
            f"Delivery #{delivery.id} is {delivery_state(delivery).value}; only a failed "
            "delivery can be retried."
        )
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.attempts >= MAX_ATTEMPTS,
        )
        .values(attempts=0, next_attempt_at=now, claimed_until=None, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(delivery)
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise ServiceError(f"Delivery #{delivery.id} changed meanwhile; reload the page.")
    audit.record(
        session, actor, "webhook.retried", object_type="webhook_endpoint",
        object_id=delivery.endpoint_id, summary=f"Asked to post delivery #{delivery.id} again "
        f"after: {(delivery.last_error or '')[:200]}", details={"delivery_id": delivery.id},
    )  # fmt: skip


# Delivery steps: portal.jobs runs them ----------------------------------------------------


def _due(now: datetime) -> list[Any]:
    """Conditions of a delivery the runner may claim at NOW."""
    active = select(WebhookEndpoint.id).where(WebhookEndpoint.removed_at.is_(None))
    return [
        WebhookDelivery.delivered_at.is_(None),
        WebhookDelivery.attempts < MAX_ATTEMPTS,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= now),
        WebhookDelivery.endpoint_id.in_(active),
    ]


def due_ids(
    session: Session, *, now: datetime, limit: int, skip: Collection[int] = ()
) -> list[int]:
    """Up to LIMIT deliveries due at NOW and not held by a runner, oldest first, none in SKIP."""
    query = (
        select(WebhookDelivery.id)
        .where(*_due(now), WebhookDelivery.id.not_in(skip) if skip else true())
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(
    session: Session,
    delivery_id: int,
    *,
    now: datetime,
    runner: str,
    lease_from: datetime | None = None,
) -> Attempt | None:
    """Compare-and-swap: take the delivery's lease and count an attempt; None if not ours.

    NOW decides whether it is due; the lease lasts LEASE from LEASE_FROM (default NOW).
    """
    token = f"{runner[:180]}/{secrets.token_hex(4)}"
    claimed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, *_due(now))
        .values(
            claimed_until=(lease_from or now) + LEASE,
            claimed_by=token,
            attempts=WebhookDelivery.attempts + 1,
            last_attempt_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        return None
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    assert delivery is not None  # noqa: S101  (just claimed)
    endpoint = delivery.endpoint
    payload = rules.body(delivery.id, delivery.event, delivery.occurred_at, delivery.data)
    return Attempt(
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        event=delivery.event,
        payload=payload,
        claim=token,
        encrypted_secret=endpoint.encrypted_secret,
    )


def signed_headers(keyring: KeyRing, attempt: Attempt, *, timestamp: int) -> dict[str, str]:
    """The headers of ATTEMPT, signed at TIMESTAMP (unix seconds, the moment of sending)."""
    secret = decrypt_secret(keyring, attempt.endpoint_id, attempt.encrypted_secret)
    return rules.headers(
        secret,
        delivery_id=attempt.delivery_id,
        event=attempt.event,
        timestamp=timestamp,
        payload=attempt.payload,
    )


def record_delivered(session: Session, attempt: Attempt, *, status: int, now: datetime) -> bool:
    """Mark ATTEMPT's delivery delivered, if its claim still holds (True)."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == attempt.delivery_id, WebhookDelivery.claimed_by == attempt.claim
        )
        .values(delivered_at=now, last_status=status, last_error=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def record_failure(
    session: Session, attempt: Attempt, *, error: str, status: int | None, now: datetime
) -> str:
    """Put ATTEMPT's delivery back with why, to be tried after the backoff; returns the reason."""
    reason = " ".join(error.split())[:2000]
    attempts = session.scalar(
        select(WebhookDelivery.attempts).where(WebhookDelivery.id == attempt.delivery_id)
    )
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == attempt.delivery_id, WebhookDelivery.claimed_by == attempt.claim
        )
        .values(
            last_error=reason,
            last_status=status,
            claimed_until=None,
            next_attempt_at=now + rules.backoff(attempts or 1),
        )
        .execution_options(synchronize_session=False)
    )
    return reason


# What events say: facts other systems act on, never a private key or a link token -------


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def owner_data(certificate: Certificate) -> dict[str, Any]:
    """Who holds CERTIFICATE: one of our identities, or a partner (with its identity)."""
    if certificate.partner is not None:
        return partner_data(certificate.partner)
    identity = certificate.identity
    assert identity is not None  # noqa: S101  (one owner: database constraint)
    return {
        "type": "identity",
        "as2_id": identity.as2_id,
        "name": identity.name,
        "environment": identity.environment,
    }


def partner_data(partner: Partner) -> dict[str, Any]:
    """A partner as events name it: its AS2 ID and that of our identity it trades with."""
    return {
        "type": "partner",
        "as2_id": partner.as2_id,
        "name": partner.name,
        "environment": partner.environment,
        "identity_as2_id": partner.identity.as2_id,
    }


def certificate_data(certificate: Certificate) -> dict[str, Any]:
    """The public facts of CERTIFICATE (fingerprints, validity, when it takes effect)."""
    return {
        "id": certificate.id,
        "usage": certificate.usage,
        "sha256": certificate.sha256,
        "sha1": certificate.sha1,
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "serial": certificate.serial,
        "not_before": _when(certificate.not_before),
        "not_after": _when(certificate.not_after),
        "activate_at": _when(certificate.activate_at),
        "withdrawn_at": _when(certificate.withdrawn_at),
    }


def certificate_event(certificate: Certificate, **extra: Any) -> dict[str, Any]:
    """The data of a certificate.* event: the owner and the certificate, and EXTRA."""
    return {"owner": owner_data(certificate), "certificate": certificate_data(certificate), **extra}


def submission_event(submission: Submission, **extra: Any) -> dict[str, Any]:
    """The data of a submission.* event: the partner and the submitted certificate."""
    return {
        "owner": partner_data(submission.partner),
        "submission": {
            "id": submission.id,
            "status": submission.status,
            "usage": submission.usage,
            "sha256": submission.sha256,
            "received_at": _when(submission.created_at),
            "proposed_window_start": _when(submission.proposed_window_start),
        },
        **extra,
    }
