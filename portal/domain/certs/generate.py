"""Making keys for our own AS2 identities: self-signed certificates and CSRs for a CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from portal.domain.certs.describe import describe_loaded
from portal.domain.certs.model import CertificateError, CertificateInfo, Usage
from portal.domain.certs.text import clean_text, require_aware

ALLOWED_RSA_SIZES: Final = (2048, 3072, 4096)
MAX_GENERATED_DAYS: Final = 3650
# Generated certificates start a little in the past so that a partner whose
# clock runs slightly behind does not see a "not yet valid" certificate.
BACKDATE: Final = timedelta(hours=1)


@dataclass(frozen=True)
class Generated:
    """A new self-signed identity certificate and its private key."""

    certificate: CertificateInfo
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class PendingKey:
    """A new private key waiting for its CA-signed certificate."""

    csr_pem: str
    private_key: rsa.RSAPrivateKey


def _check_rsa_key_size(key_size: int) -> None:
    if key_size not in ALLOWED_RSA_SIZES:
        sizes = ", ".join(str(s) for s in ALLOWED_RSA_SIZES)
        raise CertificateError(f"The RSA key size must be one of {sizes} bits, not {key_size}.")


def _identity_name(as2_id: str, organisation: str) -> x509.Name:
    attributes = []
    for label, value, oid in (
        ("AS2 ID", as2_id, NameOID.COMMON_NAME),
        ("organisation", organisation, NameOID.ORGANIZATION_NAME),
    ):
        # 64 characters is the X.520 upper bound for both attributes.
        if not value.strip() or len(value) > 64 or clean_text(value) != value:
            raise CertificateError(
                f"The {label} must be 1 to 64 visible characters to fit in a certificate."
            )
        attributes.append(x509.NameAttribute(oid, value))
    return x509.Name(attributes)


def _key_usage_for(usage: Usage) -> x509.KeyUsage:
    signing = usage in (Usage.SIGNING, Usage.BOTH)
    encryption = usage in (Usage.ENCRYPTION, Usage.BOTH)
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=encryption,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _new_rsa_key(key_size: int) -> rsa.RSAPrivateKey:
    _check_rsa_key_size(key_size)
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def generate_identity_certificate(
    *,
    as2_id: str,
    organisation: str,
    usage: Usage,
    now: datetime,
    key_size: int = 3072,
    days: int = 730,
) -> Generated:
    """Create a new RSA key and a self-signed SHA-256 certificate for one of our AS2 identities."""
    now = require_aware(now, "now").replace(microsecond=0)
    _check_rsa_key_size(key_size)
    if not 1 <= days <= MAX_GENERATED_DAYS:
        raise CertificateError(f"The validity must be 1 to {MAX_GENERATED_DAYS} days.")
    name = _identity_name(as2_id, organisation)
    key = _new_rsa_key(key_size)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage_for(Usage(usage)), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return Generated(certificate=describe_loaded(cert).info, private_key=key)


def create_csr(*, as2_id: str, organisation: str, usage: Usage, key_size: int = 3072) -> PendingKey:
    """Create a new RSA key and a certificate signing request for a CA to sign."""
    name = _identity_name(as2_id, organisation)
    key = _new_rsa_key(key_size)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage_for(Usage(usage)), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return PendingKey(csr_pem=pem, private_key=key)
