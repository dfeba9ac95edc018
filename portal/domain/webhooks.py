"""Webhooks without the network: the delivery body, its signature, URL and address rules.

A delivery is a JSON POST. Its body is `{"id", "event", "occurred_at", "data"}`, written
with sorted keys and no spaces. The signature is HMAC-SHA256 under the endpoint's secret
over `f"{timestamp}.{body}"`, sent as `X-Portal-Signature: sha256=<hex>` beside
`X-Portal-Timestamp: <unix seconds>`; a receiver recomputes it (see `verify`) and
refuses old timestamps, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

SECRET_PREFIX: Final = "whsec_"  # noqa: S105  (a prefix, not a secret)
MIN_SECRET_LENGTH: Final = 24
MAX_SECRET_LENGTH: Final = 200
MAX_URL_LENGTH: Final = 2000
TIMESTAMP_HEADER: Final = "X-Portal-Timestamp"
SIGNATURE_HEADER: Final = "X-Portal-Signature"
EVENT_HEADER: Final = "X-Portal-Event"
DELIVERY_HEADER: Final = "X-Portal-Delivery"
USER_AGENT: Final = "cert-exchange-portal-webhooks/1"
# How old a timestamp a receiver should still accept (verify's default).
DEFAULT_TOLERANCE: Final = timedelta(minutes=5)
BACKOFF_BASE: Final = timedelta(minutes=1)
BACKOFF_CAP: Final = timedelta(hours=6)


class WebhookUrlError(ValueError):
    """A webhook URL or the address it resolves to is refused; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a webhook URL points: scheme, host (no brackets) and port."""

    scheme: str
    host: str
    port: int


def new_secret() -> str:
    """A fresh signing secret (shown once to the admin, kept encrypted)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_secret(secret: str) -> str:
    """SECRET if it is usable as a signing secret; ValueError saying why not."""
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise ValueError(
            f"A webhook secret is {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters."
        )
    if not secret.isprintable() or secret != secret.strip():
        raise ValueError("A webhook secret is printable text without surrounding spaces.")
    return secret


def parse_url(text: str) -> Target:
    """Where TEXT points, if it is an http(s) URL with a host; WebhookUrlError otherwise."""
    url = text.strip()
    if not url:
        raise WebhookUrlError("Give the receiver's URL, starting with https:// or http://.")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise WebhookUrlError("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookUrlError(f"That is not a usable URL ({error}).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookUrlError(
            f"Only http:// and https:// URLs can receive webhooks, not {parts.scheme or 'that'}."
        )
    if not parts.hostname:
        raise WebhookUrlError("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("Put no user name or password in the URL; deliveries are signed.")
    scheme = parts.scheme.lower()
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def address_problem(address: str) -> str | None:
    """Why ADDRESS may not receive webhooks (loopback, private, ...), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo's server) are judged by it.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[0] if ip.teredo else None)
        if embedded is not None:
            embedded_problem = address_problem(str(embedded))
            if embedded_problem is not None:
                return f"{address} carries {embedded}: {embedded_problem}"
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    for kind, flag in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
    ):
        if flag:
            return f"{address} is {kind} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def body(delivery_id: int, event: str, occurred_at: datetime, data: Mapping[str, Any]) -> bytes:
    """The exact bytes POSTed for a delivery (the same on every attempt)."""
    document = {
        "id": delivery_id,
        "event": event,
        "occurred_at": occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": dict(data),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The X-Portal-Signature value: `sha256=` and the hex HMAC of `{timestamp}.{body}`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(
    secret: str, *, delivery_id: int, event: str, timestamp: int, payload: bytes
) -> dict[str, str]:
    """The HTTP headers of one attempt, signed at TIMESTAMP (unix seconds)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, payload),
    }


def verify(
    secret: str,
    *,
    timestamp: str,
    signature_header: str,
    payload: bytes,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - stamp) > tolerance.total_seconds():
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters, and a forged header may hold any.
    expected = signature(secret, stamp, payload).encode()
    return hmac.compare_digest(expected, signature_header.encode("utf-8", "surrogateescape"))


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ATTEMPTS-th failed attempt: 1, 2, 4, ... minutes, capped."""
    factor: int = 2 ** min(max(attempts - 1, 0), 16)
    return min(BACKOFF_BASE * factor, BACKOFF_CAP)
