"""Text hygiene and formatting: safe text from certificates, times, hex and fingerprints."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Final

from portal.domain.certs.model import CertificateError

# Control, format (bidi overrides, zero-width) and line/paragraph separators can
# hide or reorder text shown to people, so they never reach a page or an email.
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_MAX_SHOWN_CHARS: Final = 200


def clean_text(text: str) -> str:
    """Remove control and invisible formatting characters from text taken from a certificate."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)


def shorten(text: str) -> str:
    """Cut text to a length that stays readable in a message."""
    # Subjects can be long; messages stay readable on a phone.
    if len(text) <= _MAX_SHOWN_CHARS:
        return text
    return text[: _MAX_SHOWN_CHARS - 3] + "..."


def fmt_time(moment: datetime) -> str:
    """Format a moment in UTC to the minute, as messages show it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def colon_hex(digest: bytes) -> str:
    """Spell bytes as colon-separated uppercase hex, as AS2 software shows fingerprints."""
    return colon_fingerprint(digest.hex())


def colon_fingerprint(hex_digest: str) -> str:
    """Display form of a fingerprint stored as hex: upper-case pairs separated by colons.

    The one spelling of a fingerprint people read: pages (the `fingerprint` filter), emails,
    the command line, the audit trail and the certificate reports all use it.
    """
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def short_fingerprint(hex_digest: str) -> str:
    """The first eight bytes of a stored fingerprint in display form, then an ellipsis."""
    return colon_fingerprint(hex_digest)[:23] + "…"


def sha256_hex(fingerprint: str) -> str:
    """Storage form of a fingerprint (any hash): lower-case hex without colons."""
    return fingerprint.replace(":", "").lower()


def require_aware(moment: datetime, name: str) -> datetime:
    """Return moment in UTC; a naive datetime is a programming error (ValueError)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def normalise_fingerprint(value: str) -> str:
    """Return a fingerprint as colon-separated uppercase hex, whatever its input spelling."""
    # Accept what people paste from `openssl x509 -fingerprint` ("SHA256 Fingerprint=AB:..").
    text = value.rsplit("=", 1)[-1]
    compact = re.sub(r"[\s:]", "", text)
    if not compact or len(compact) % 2 or re.fullmatch(r"[0-9A-Fa-f]+", compact) is None:
        raise CertificateError(f"{shorten(clean_text(value))!r} is not a fingerprint in hex")
    return colon_hex(bytes.fromhex(compact))
