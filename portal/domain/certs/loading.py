"""Importing keys with their certificates: PEM/DER pairs, PKCS#12 files, CA-signed CSRs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.domain.certs.chain import order_chain
from portal.domain.certs.der import is_encrypted_pkcs8, is_pfx
from portal.domain.certs.describe import (
    Parsed,
    describe,
    describe_loaded,
    public_der,
    read_public_key,
)
from portal.domain.certs.extract import MAX_INPUT_BYTES, PEM_BEGIN, extract, too_large
from portal.domain.certs.model import (
    CRYPTO_ERRORS,
    CertificateError,
    CertificateInfo,
    PrivateKey,
    refusing,
)


@dataclass(frozen=True)
class KeyedCertificate:
    """A certificate with its private key and CA chain, e.g. from an import."""

    certificate: CertificateInfo
    private_key: PrivateKey
    chain: tuple[CertificateInfo, ...] = ()


def _certificates_in(data: bytes) -> list[Parsed]:
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateError(too_large(len(data)).message)
    found = extract(bytes(data))
    if not found.certificates:
        raise CertificateError("No certificate could be read from the file.")
    return [describe(cert, der) for cert, der in found.certificates]


def _split_for_key(key: PrivateKey, parsed: list[Parsed]) -> KeyedCertificate:
    """Pick the certificate belonging to key; the others become its chain."""
    wanted = public_der(key)
    for candidate in parsed:
        public = read_public_key(candidate.cert)
        if public is not None and public_der(public) == wanted:
            chain = order_chain(candidate, parsed)
            return KeyedCertificate(candidate.info, key, tuple(p.info for p in chain))
    raise CertificateError(
        "The certificate does not match the private key: it was issued for a different key. "
        "Please pick the certificate that belongs to this key."
    )


@refusing("The certificate could not be read.")
def match_signed_bundle(private_key: PrivateKey, data: bytes) -> KeyedCertificate:
    """Find the CA-signed certificate for a pending key in data, with its chain."""
    return _split_for_key(private_key, _certificates_in(data))


def match_signed_certificate(private_key: PrivateKey, data: bytes) -> CertificateInfo:
    """Return the certificate in data that belongs to the pending key, or raise CertificateError."""
    return match_signed_bundle(private_key, data).certificate


def _accepted_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise CertificateError("Only RSA and EC private keys can be used for AS2.")


def _private_key_block(data: bytes) -> bytes:
    """The first PEM private key block of data (which may also hold certificates)."""
    for match in PEM_BEGIN.finditer(data):
        label = match.group(1)
        if label.endswith(b"PRIVATE KEY"):
            end_marker = b"-----END " + label + b"-----"
            end = data.find(end_marker, match.end())
            if end >= 0:
                return data[match.start() : end + len(end_marker)]
    raise CertificateError("No private key was found in the key file.")


def _load_private_key(data: bytes, passphrase: bytes | None) -> PrivateKey:
    pem = b"-----BEGIN " in data
    raw = _private_key_block(data) if pem else data
    load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    encrypted = b"ENCRYPTED" in raw[:200] if pem else is_encrypted_pkcs8(raw)
    password = passphrase if passphrase and encrypted else None
    try:
        key = load(raw, password)
    except TypeError as exc:
        raise CertificateError("The private key is protected: please give its passphrase.") from exc
    except UnsupportedAlgorithm as exc:
        raise CertificateError(
            "The private key uses a type or protection that is not supported."
        ) from exc
    except CRYPTO_ERRORS as exc:
        reason = (
            "the passphrase is wrong"
            if encrypted
            else "the file is damaged or not PKCS#8 or traditional PEM/DER"
        )
        raise CertificateError(f"The private key could not be read: {reason}.") from exc
    return _accepted_key(key)


@refusing("The certificate or the private key could not be read.")
def load_pem_bundle(
    cert_data: bytes, key_data: bytes, passphrase: bytes | None
) -> KeyedCertificate:
    """Import a certificate (PEM, DER or PKCS#7, with chain) and its PEM or DER private key."""
    if len(key_data) > MAX_INPUT_BYTES:
        raise CertificateError(too_large(len(key_data)).message)
    key = _load_private_key(bytes(key_data), passphrase)
    try:
        parsed = _certificates_in(cert_data)
    except CertificateError:
        # A combined file may carry the certificate next to the key.
        parsed = _certificates_in(key_data)
    return _split_for_key(key, parsed)


@refusing("The PKCS#12 file could not be read.")
def load_pkcs12(data: bytes, passphrase: bytes) -> KeyedCertificate:
    """Import a PKCS#12 (.p12/.pfx) file holding a private key, its certificate and chain."""
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateError(too_large(len(data)).message)
    loaded = _open_pkcs12(bytes(data), passphrase)
    key, cert, others = loaded
    if key is None:
        raise CertificateError("The PKCS#12 file contains no private key.")
    key = _accepted_key(key)
    parsed = [describe_loaded(c) for c in [*([cert] if cert else []), *others]]
    if not parsed:
        raise CertificateError("The PKCS#12 file contains no certificate.")
    try:
        return _split_for_key(key, parsed)
    except CertificateError as exc:
        raise CertificateError(
            "The private key in the PKCS#12 file does not belong to its certificate."
        ) from exc


_Pkcs12Content: TypeAlias = tuple[object | None, x509.Certificate | None, list[x509.Certificate]]


def _open_pkcs12(data: bytes, passphrase: bytes) -> _Pkcs12Content:
    # Tools disagree on whether "no password" means an empty or an absent one.
    passwords = [passphrase] if passphrase else [None, b""]
    for password in passwords:
        try:
            return pkcs12.load_key_and_certificates(data, password)
        except UnsupportedAlgorithm as exc:
            raise CertificateError(
                "The PKCS#12 file is protected with an algorithm that is not supported; please "
                "export it again with AES-256 encryption."
            ) from exc
        except CRYPTO_ERRORS:
            continue
    if is_pfx(data):
        raise CertificateError("The PKCS#12 file could not be opened: the passphrase is wrong.")
    raise CertificateError("This is not a PKCS#12 (.p12/.pfx) file.")


def private_key_from_der(data: bytes) -> PrivateKey:
    """Load an unencrypted PKCS#8 DER private key, as decrypted by the key ring."""
    try:
        key = serialization.load_der_private_key(bytes(data), None)
    except CRYPTO_ERRORS as exc:
        raise CertificateError("The stored private key could not be read.") from exc
    return _accepted_key(key)
