"""Distinct, real certificates made fast: a handful of keys made once, many serials signed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from portal.domain.certs import certificate_info, sha256_hex

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
# keyUsage for an AS2 certificate used for both signing and encryption.
_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def make_keys() -> list[PrivateKey]:
    """The bench's keys: RSA 2048 and 3072 and three EC P-256 keys (EC signs fastest)."""
    return [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=3072),
        *(ec.generate_private_key(ec.SECP256R1()) for _ in range(3)),
    ]


@dataclass
class CertMaker:
    """Signs self-signed certificates on a few shared keys; each gets a new serial."""

    keys: list[PrivateKey]
    _serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_001))

    def der(
        self, cn: str, org: str, *, not_before: datetime, not_after: datetime, slot: int = 0
    ) -> bytes:
        """DER of a new certificate for CN/ORG on key SLOT (modulo the number of keys)."""
        key = self.keys[slot % len(self.keys)]
        return make_der(key, cn, org, next(self._serials), not_before, not_after)

    def upload_pem(self, cn: str, now: datetime) -> bytes:
        """A fresh acceptable PEM (RSA 3072, 400 days) a partner could upload."""
        der = make_der(
            self.keys[1],
            cn,
            "Bench Partner",
            next(self._serials),
            now - timedelta(days=1),
            now + timedelta(days=400),
        )
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def make_der(
    key: PrivateKey, cn: str, org: str, serial: int, not_before: datetime, not_after: datetime
) -> bytes:
    """A self-signed SHA-256 certificate on KEY, as DER."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_USAGE, critical=True)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def certificate_fields(der: bytes) -> dict[str, Any]:
    """The Certificate columns the portal derives from DER (as certificates.certificate_row)."""
    info = certificate_info(der)
    return {
        "der": info.der,
        "sha256": sha256_hex(info.fingerprint_sha256),
        "sha1": sha256_hex(info.fingerprint_sha1),
        "subject": info.subject,
        "issuer": info.issuer,
        "serial": info.serial,
        "not_before": info.not_before,
        "not_after": info.not_after,
        "key_type": info.key_type,
        "key_size": info.key_size,
        "signature_hash": info.signature_hash,
        "chain_pem": "",
    }


def private_der(key: PrivateKey) -> bytes:
    """KEY as unencrypted PKCS#8 DER (encrypted under the key ring before it is stored)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
