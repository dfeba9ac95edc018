"""Key and signature strength: key types, RSA sizes, elliptic curves, signature hashes."""

from __future__ import annotations

from typing import Final

from portal.domain.certs.describe import NIST_CURVES
from portal.domain.certs.model import CertificateInfo, Code, Finding, error, warning
from portal.domain.certs.text import clean_text

RECOMMENDED_RSA_BITS: Final = 3072
MIN_RSA_BITS: Final = 2048
_HASH_LABELS: Final = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
_WEAK_HASHES: Final = frozenset({"md2", "md4", "md5", "sha1"})


def check_key(cert: CertificateInfo) -> list[Finding]:
    """Judge the key: RSA of enough bits, or EC on a NIST curve; DSA and others are refused."""
    if cert.key_type == "RSA" and cert.key_size is not None:
        return _check_rsa_size(cert.key_size)
    if cert.key_type == "EC":
        if cert.curve in NIST_CURVES.values():
            return []
        return [
            error(
                Code.EC_CURVE_NOT_ALLOWED,
                f"The key uses the elliptic curve {clean_text(cert.curve or 'unknown')}; only "
                "P-256, P-384 and P-521 are accepted. Please use one of those or an RSA key.",
                curve=clean_text(cert.curve or "unknown"),
            )
        ]
    if cert.key_type == "DSA":
        return [
            error(
                Code.DSA_KEY,
                "The certificate has a DSA key. DSA is obsolete and not supported for AS2. "
                "Please use an RSA key (3072 bits recommended).",
            )
        ]
    return [
        error(
            Code.UNSUPPORTED_KEY_TYPE,
            f"The certificate has a key of type {cert.key_type}, which AS2 software does not "
            "support. Please use an RSA key (3072 bits recommended).",
            key_type=cert.key_type,
        )
    ]


def _check_rsa_size(bits: int) -> list[Finding]:
    if bits < MIN_RSA_BITS:
        return [
            error(
                Code.RSA_KEY_TOO_SMALL,
                f"The RSA key has {bits} bits; at least {MIN_RSA_BITS} are required and "
                f"{RECOMMENDED_RSA_BITS} recommended. Please create a new key and certificate.",
                bits=bits,
                minimum=MIN_RSA_BITS,
                recommended=RECOMMENDED_RSA_BITS,
            )
        ]
    if bits < RECOMMENDED_RSA_BITS:
        return [
            warning(
                Code.RSA_2048,
                f"The RSA key has {bits} bits. This is accepted, but {RECOMMENDED_RSA_BITS} bits "
                "are recommended for certificates used beyond 2030.",
                bits=bits,
                recommended=RECOMMENDED_RSA_BITS,
            )
        ]
    return []


def check_signature_hash(cert: CertificateInfo) -> list[Finding]:
    """Refuse a certificate signed with a broken hash (MD2, MD4, MD5, SHA-1)."""
    if cert.signature_hash not in _WEAK_HASHES:
        return []
    label = _HASH_LABELS.get(cert.signature_hash or "", (cert.signature_hash or "").upper())
    return [
        error(
            Code.WEAK_SIGNATURE_HASH,
            f"The certificate is signed with {label}, which is broken and rejected by current "
            "AS2 software. Please issue a new certificate signed with SHA-256 or stronger.",
            algorithm=label,
        )
    ]
