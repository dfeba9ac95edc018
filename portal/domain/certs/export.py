"""Writing certificates and keys out: PEM, DER, PKCS#7, PKCS#12, and keys for the key ring."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from portal.domain.certs.describe import load_der_certificate, public_der, read_public_key
from portal.domain.certs.model import CRYPTO_ERRORS, CertificateError, PrivateKey, refusing

_PKCS12_KDF_ROUNDS: Final = 100_000


def _load_for_export(der: bytes) -> x509.Certificate:
    try:
        return load_der_certificate(bytes(der))
    except CRYPTO_ERRORS as exc:
        raise CertificateError("The stored certificate could not be read.") from exc


def export_pem(der: bytes, chain_ders: Sequence[bytes] = ()) -> bytes:
    """Return the certificate as PEM, followed by its chain (issuer first) when given."""
    certs = [_load_for_export(d) for d in [der, *chain_ders]]
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def armour_pem(der: bytes) -> str:
    """Wrap stored DER as PEM text without parsing it (RFC 7468: base64, 64 per line).

    For bulk output of certificates the portal validated when it stored them; parsing each
    one again would cost far more than the encoding.
    """
    body = base64.b64encode(bytes(der)).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def split_pem_certificates(text: str) -> list[str]:
    """The PEM certificate blocks of TEXT as stored by the portal, one string each, in order."""
    marker = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + marker + "\n" for part in text.split(marker) if part.strip()]


def export_der(der: bytes) -> bytes:
    """Return the certificate as DER (.cer), checking that it is one."""
    return _load_for_export(der).public_bytes(serialization.Encoding.DER)


@refusing("The certificates could not be written as PKCS#7.")
def export_p7c(der: bytes, chain_ders: Sequence[bytes] = ()) -> bytes:
    """Return the certificate and its chain as a DER PKCS#7 certificates-only file (.p7c)."""
    certs = [_load_for_export(d) for d in [der, *chain_ders]]
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


def _pkcs12_encryption(passphrase: bytes, legacy: bool) -> serialization.KeySerializationEncryption:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_PKCS12_KDF_ROUNDS)
    if legacy:
        # Old AS2 software (and Windows before 2016) only reads 3DES with a SHA-1 MAC.
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())  # noqa: S303  # nosec B303  # legacy PKCS#12 MAC, asked for
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        builder = builder.hmac_hash(hashes.SHA256())
    return builder.build(passphrase)


@refusing("The PKCS#12 file could not be written.")
def export_pkcs12(
    *,
    private_key: PrivateKey,
    certificate_der: bytes,
    chain_ders: Sequence[bytes],
    passphrase: bytes,
    friendly_name: bytes,
    legacy: bool = False,
) -> bytes:
    """Return a passphrase-protected PKCS#12 file; legacy uses 3DES/SHA-1 for old software."""
    if not passphrase:
        raise CertificateError("A PKCS#12 file needs a passphrase.")
    cert = _load_for_export(certificate_der)
    public = read_public_key(cert)
    if public is None or public_der(public) != public_der(private_key):
        raise CertificateError("The private key does not belong to the certificate.")
    chain = [_load_for_export(d) for d in chain_ders]
    encryption = _pkcs12_encryption(passphrase, legacy)
    return pkcs12.serialize_key_and_certificates(
        friendly_name or None, private_key, cert, chain or None, encryption
    )


@refusing("The PKCS#12 file could not be written.")
def export_pkcs12_chain(
    chain_ders: Sequence[bytes], *, passphrase: bytes, legacy: bool = False
) -> bytes:
    """A PKCS#12 file of certificates only, without names: the chain a keystore shares."""
    if not passphrase:
        raise CertificateError("A PKCS#12 file needs a passphrase.")
    chain = [_load_for_export(d) for d in chain_ders]
    if not chain:
        raise CertificateError("No certificates to write.")
    encryption = _pkcs12_encryption(passphrase, legacy)
    return pkcs12.serialize_key_and_certificates(None, None, None, chain, encryption)


def private_key_to_der(key: PrivateKey) -> bytes:
    """Return the key as unencrypted PKCS#8 DER, only to hand to the key ring for encryption."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
