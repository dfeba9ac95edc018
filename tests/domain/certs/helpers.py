"""Shared helpers for the certificate tests: a fixed clock, a checked inspect, sample files."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.domain.certs import Code, Report, Usage, inspect
from tests import certfactory as cf

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FORMAT = serialization.PrivateFormat
ENCODING = serialization.Encoding


def check(data: bytes, usage: Usage = Usage.BOTH, **kwargs: Any) -> Report:
    """Inspect at NOW unless told otherwise, and insist no internal error happened."""
    kwargs.setdefault("now", NOW)
    report = inspect(data, usage=usage, **kwargs)
    assert Code.INTERNAL_ERROR not in report.codes
    return report


def good_cert(**kwargs: Any) -> x509.Certificate:
    """A self-signed RSA 2048 certificate for both usages, valid from NOW - 1 day for 366 days."""
    return cf.make_cert(now=NOW, **kwargs)[0]


def real_now() -> datetime:
    """The wall clock, for certificates the openssl command dates itself."""
    return datetime.now(UTC)


def csr_pem() -> bytes:
    """A certificate signing request in PEM."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(cf.name("PARTNERAS2"))
        .sign(cf.rsa_key(), hashes.SHA256())
    )
    return csr.public_bytes(ENCODING.PEM)


def two_unrelated() -> bytes:
    """Two self-signed certificates with different keys in one PEM file."""
    first = good_cert(subject=cf.name("FIRSTAS2"))
    second = good_cert(subject=cf.name("SECONDAS2"), key=cf.rsa_key(2048, slot=2))
    return cf.pem(first, second)


def with_ca() -> bytes:
    """A CA and the certificate it issued, CA first, in one PEM file."""
    ca, ca_key = cf.make_ca(now=NOW)
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, ca_key))
    return cf.pem(ca, leaf)


@functools.cache
def plain() -> bytes:
    """The PEM of good_cert(), the same bytes for the whole run."""
    return cf.pem(good_cert())


def p12(password: bytes | None, *, with_cert: bool = True) -> bytes:
    """A PKCS#12 file with the shared RSA key and, unless told otherwise, plain()'s certificate."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    cert = x509.load_pem_x509_certificate(plain()) if with_cert else None
    return pkcs12.serialize_key_and_certificates(b"as2", cf.rsa_key(), cert, None, encryption)
