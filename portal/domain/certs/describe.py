"""Reading one certificate: names, extensions, key and signature, tolerating damaged parts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from portal.domain.certs.der import der_serial
from portal.domain.certs.model import (
    CRYPTO_ERRORS,
    CertificateError,
    CertificateInfo,
    Code,
    Finding,
    PrivateKey,
    error,
)
from portal.domain.certs.text import clean_text, colon_hex

# RFC 5280 names, the spelling AS2 products and openssl documentation use.
_KEY_USAGE_BITS: Final = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_KEY_AGREEMENT_BITS: Final = (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
KEY_USAGE_LABELS: Final = {
    "digitalSignature": "Digital Signature",
    "nonRepudiation": "Non-Repudiation",
    "keyEncipherment": "Key Encipherment",
    "dataEncipherment": "Data Encipherment",
    "keyAgreement": "Key Agreement",
    "keyCertSign": "Certificate Sign",
    "cRLSign": "CRL Sign",
    "encipherOnly": "Encipher Only",
    "decipherOnly": "Decipher Only",
}
_EKU_NAMES: Final = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
NIST_CURVES: Final = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# Signature algorithms cryptography cannot name a hash for but that are known broken.
_WEAK_SIGNATURE_OIDS: Final = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
}
_KEY_CLASSES: Final[tuple[tuple[type[object], str], ...]] = (
    (rsa.RSAPublicKey, "RSA"),
    (ec.EllipticCurvePublicKey, "EC"),
    (dsa.DSAPublicKey, "DSA"),
    (ed25519.Ed25519PublicKey, "Ed25519"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PublicKey, "X448"),
)


@dataclass(frozen=True)
class _Extensions:
    key_usage: tuple[str, ...] | None  # None: no keyUsage extension, so any use is allowed
    extended_key_usage: tuple[str, ...]
    is_ca: bool


_NO_EXTENSIONS: Final = _Extensions(None, (), False)


@dataclass(frozen=True)
class Parsed:
    """A loaded certificate with its description and what went wrong reading it."""

    cert: x509.Certificate
    info: CertificateInfo
    problems: tuple[Finding, ...]
    subject_name: x509.Name | None
    issuer_name: x509.Name | None
    key_usage_present: bool
    serial_value: int
    signature_algorithm: str

    def issued(self, other: Parsed) -> bool:
        """Whether this certificate's subject is the issuer of another certificate."""
        return (
            other is not self
            and self.subject_name is not None
            and self.subject_name == other.issuer_name
        )


@dataclass(frozen=True)
class _Parts:
    """The parts of a certificate, each read on its own so that one damaged part is noted."""

    subject_name: x509.Name | None
    subject: str
    issuer_name: x509.Name | None
    issuer: str
    extensions: _Extensions | None  # None: not encoded correctly
    key: tuple[str, int | None, str | None]
    hash_name: str | None
    signature_algorithm: str
    serial_value: int


def _read_name(get: Callable[[], x509.Name]) -> tuple[x509.Name | None, str]:
    try:
        name = get()
        return name, clean_text(name.rfc4514_string())
    except CRYPTO_ERRORS:
        return None, "(unreadable name)"


def _key_usage_names(usage: x509.KeyUsage) -> tuple[str, ...]:
    names = [label for attr, label in _KEY_USAGE_BITS if getattr(usage, attr)]
    if usage.key_agreement:  # encipher_only/decipher_only raise unless keyAgreement is set
        names += [label for attr, label in _KEY_AGREEMENT_BITS if getattr(usage, attr)]
    return tuple(names)


def _read_extensions(cert: x509.Certificate) -> _Extensions | None:
    """Read the extensions we judge; None when they are not encoded correctly."""
    try:
        extensions = cert.extensions
        key_usage: tuple[str, ...] | None = None
        eku: tuple[str, ...] = ()
        is_ca = False
        for extension in extensions:
            value = extension.value
            if isinstance(value, x509.KeyUsage):
                key_usage = _key_usage_names(value)
            elif isinstance(value, x509.ExtendedKeyUsage):
                eku = tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in value)
            elif isinstance(value, x509.BasicConstraints):
                is_ca = value.ca
        return _Extensions(key_usage, eku, is_ca)
    except CRYPTO_ERRORS:
        return None


def _key_facts(key: CertificatePublicKeyTypes | None) -> tuple[str, int | None, str | None]:
    """Return (key type, size in bits, curve) for display and judgement."""
    if key is None:
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return ("RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"), key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, NIST_CURVES.get(key.curve.name, key.curve.name)
    for cls, label in _KEY_CLASSES:
        if isinstance(key, cls):
            return label, None, None
    return type(key).__name__.removesuffix("PublicKey"), None, None


def read_public_key(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    """The certificate's public key, or None when it cannot be read."""
    try:
        return cert.public_key()
    except CRYPTO_ERRORS:
        return None


def _read_signature(cert: x509.Certificate) -> tuple[str | None, str]:
    """Return (hash name or None, signature algorithm name)."""
    try:
        oid = cert.signature_algorithm_oid
        name = oid._name if oid._name != "Unknown OID" else oid.dotted_string
    except CRYPTO_ERRORS:
        return None, "unknown"
    try:
        algorithm = cert.signature_hash_algorithm
    except CRYPTO_ERRORS:
        return _WEAK_SIGNATURE_OIDS.get(oid.dotted_string), name
    return (algorithm.name if algorithm is not None else None), name


def _serial_text(value: int) -> str:
    return f"{value:X}" if value >= 0 else f"-{-value:X}"


def _read_parts(cert: x509.Certificate, der: bytes) -> _Parts:
    subject_name, subject = _read_name(lambda: cert.subject)
    issuer_name, issuer = _read_name(lambda: cert.issuer)
    extensions = _read_extensions(cert)
    key = _key_facts(read_public_key(cert))
    hash_name, signature_algorithm = _read_signature(cert)
    serial = der_serial(der)
    return _Parts(
        subject_name=subject_name,
        subject=subject,
        issuer_name=issuer_name,
        issuer=issuer,
        extensions=extensions,
        key=key,
        hash_name=hash_name,
        signature_algorithm=signature_algorithm,
        serial_value=serial if serial is not None else cert.serial_number,
    )


def _reading_problems(parts: _Parts) -> tuple[Finding, ...]:
    problems: list[Finding] = []
    if parts.subject_name is None or parts.issuer_name is None:
        problems.append(
            error(
                Code.MALFORMED_CERTIFICATE,
                "The subject or issuer name of the certificate is not encoded correctly, so AS2 "
                "software will reject it. Please issue a new certificate.",
            )
        )
    if parts.extensions is None:
        problems.append(
            error(
                Code.MALFORMED_EXTENSION,
                "Part of the certificate (its extensions) is not encoded correctly, so AS2 "
                "software will reject it. Please issue a new certificate.",
            )
        )
    return tuple(problems)


def _certificate_info(
    cert: x509.Certificate, der: bytes, parts: _Parts, extensions: _Extensions
) -> CertificateInfo:
    key_type, key_size, curve = parts.key
    return CertificateInfo(
        der=der,
        subject=parts.subject,
        issuer=parts.issuer,
        serial=_serial_text(parts.serial_value),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_hash=parts.hash_name,
        key_usage=extensions.key_usage or (),
        extended_key_usage=extensions.extended_key_usage,
        is_ca=extensions.is_ca,
        self_signed=parts.subject_name is not None and parts.subject_name == parts.issuer_name,
        fingerprint_sha256=colon_hex(hashlib.sha256(der).digest()),
        fingerprint_sha1=colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
    )


def describe(cert: x509.Certificate, der: bytes) -> Parsed:
    """Describe a loaded certificate, noting the parts that could not be read."""
    parts = _read_parts(cert, der)
    extensions = parts.extensions if parts.extensions is not None else _NO_EXTENSIONS
    return Parsed(
        cert=cert,
        info=_certificate_info(cert, der, parts, extensions),
        problems=_reading_problems(parts),
        subject_name=parts.subject_name,
        issuer_name=parts.issuer_name,
        key_usage_present=extensions.key_usage is not None,
        serial_value=parts.serial_value,
        signature_algorithm=parts.signature_algorithm,
    )


def describe_loaded(cert: x509.Certificate) -> Parsed:
    """Describe a certificate object (one we made, or one from a PKCS#12 file)."""
    return describe(cert, cert.public_bytes(serialization.Encoding.DER))


def load_der_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate; raises the cryptography library's errors."""
    # cryptography warns about zero or negative serials (reported here as a finding). The
    # warning is left alone: silencing it means swapping the process-wide warning filters,
    # which is not thread-safe in a threaded web server.
    return x509.load_der_x509_certificate(der)


def certificate_info(der: bytes) -> CertificateInfo:
    """Describe one DER certificate, raising CertificateError if it cannot be read."""
    try:
        return describe(load_der_certificate(bytes(der)), bytes(der)).info
    except CRYPTO_ERRORS as exc:
        raise CertificateError("The certificate could not be read.") from exc


def public_der(key: PrivateKey | CertificatePublicKeyTypes) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a key, or of a private key's public half."""
    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_der(certificate_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a stored certificate (to tell whether a key was reused)."""
    try:
        cert = x509.load_der_x509_certificate(bytes(certificate_der))
        return public_der(cert.public_key())
    except CRYPTO_ERRORS as exc:
        raise CertificateError("The stored certificate could not be read.") from exc


def non_positive_serial_finding() -> Finding:
    """The error for a serial number of zero or below (RFC 5280 wants it positive)."""
    return error(
        Code.NON_POSITIVE_SERIAL,
        "The certificate's serial number is zero or negative. The standard forbids this and many "
        "systems reject such certificates. Please issue a new certificate.",
    )
