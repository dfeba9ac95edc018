"""The alias an AS2 engine files a certificate under: stable, unique per certificate.

Engines key their keystores by alias (OpenAS2's `x509_alias`, a Java keystore entry, a
PKCS#12 friendly name). Java keystores compare aliases without case and some tools
choke on spaces or quotes, so an alias is lower-case ASCII letters, digits, '.', '_'
and '-': the owner's AS2 ID made safe, then the first 16 hex digits of the SHA-256
fingerprint, so two generations of one owner's certificates never share an alias.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
FINGERPRINT_DIGITS = 16  # 64 bits: collisions between one owner's certificates are not a risk


def certificate_alias(owner_as2_id: str, sha256_hex: str) -> str:
    """The alias of the certificate with SHA256_HEX belonging to OWNER_AS2_ID."""
    owner = _UNSAFE.sub("-", owner_as2_id.lower()).strip("-.") or "as2"
    return f"{owner[:48]}-{sha256_hex.lower()[:FINGERPRINT_DIGITS]}"
