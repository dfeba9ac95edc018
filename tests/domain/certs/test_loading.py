"""Importing: CA-signed certificates for a pending key, PKCS#12, PEM/DER pairs, stored keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.domain import certs
from portal.domain.certs import MAX_INPUT_BYTES, CertificateError, Usage
from tests import certfactory as cf
from tests.domain.certs.helpers import ENCODING, FORMAT, NOW, p12, plain


def _sign_csr(csr_pem: str, days: int = 365) -> x509.Certificate:
    ca, ca_key = cf.make_ca(now=NOW)
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=days))
    )
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    return builder.sign(ca_key, hashes.SHA256())


def test_csr_and_matching_signed_certificate() -> None:
    pending = certs.create_csr(
        as2_id="ACMEAS2", organisation="Acme Corp", usage=Usage.SIGNING, key_size=2048
    )
    csr = x509.load_pem_x509_csr(pending.csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "O=Acme Corp,CN=ACMEAS2"
    key_usage = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature
    assert not key_usage.key_encipherment
    signed = _sign_csr(pending.csr_pem)
    ca = cf.make_ca(now=NOW)[0]
    info = certs.match_signed_certificate(pending.private_key, cf.pem(ca, signed))
    assert info.der == cf.der(signed)
    bundle = certs.match_signed_bundle(pending.private_key, cf.pem(signed, ca))
    assert [c.der for c in bundle.chain] == [cf.der(ca)]


def test_signed_certificate_for_another_key_is_refused() -> None:
    pending = certs.create_csr(
        as2_id="ACMEAS2", organisation="Acme Corp", usage=Usage.BOTH, key_size=2048
    )
    with pytest.raises(CertificateError, match="does not match"):
        certs.match_signed_certificate(pending.private_key, plain())
    with pytest.raises(CertificateError, match="No certificate"):
        certs.match_signed_certificate(pending.private_key, b"garbage")


def test_load_pkcs12_failures(
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    leaf, key, _ = keyed
    blob = certs.export_pkcs12(
        private_key=key,
        certificate_der=cf.der(leaf),
        chain_ders=[],
        passphrase=b"right",
        friendly_name=b"x",
    )
    with pytest.raises(CertificateError, match="passphrase is wrong"):
        certs.load_pkcs12(blob, b"wrong")
    with pytest.raises(CertificateError, match="not a PKCS#12"):
        certs.load_pkcs12(b"garbage", b"right")
    with pytest.raises(CertificateError, match="at most"):
        certs.load_pkcs12(b"\x30" * (MAX_INPUT_BYTES + 1), b"right")
    key_only = pkcs12.serialize_key_and_certificates(
        b"x", key, None, None, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(CertificateError, match="no certificate"):
        certs.load_pkcs12(key_only, b"pw")
    no_key = pkcs12.serialize_key_and_certificates(
        b"x", None, None, [leaf], serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(CertificateError, match="no private key"):
        certs.load_pkcs12(no_key, b"pw")


def test_load_pkcs12_key_for_another_certificate(
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    _, key, ca = keyed
    # cryptography refuses to pair a key with a foreign certificate, so the CA rides along
    # as an extra certificate: the file then holds a key and no certificate of its own.
    mismatched = pkcs12.serialize_key_and_certificates(
        b"x", key, None, [ca], serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(CertificateError, match="does not belong"):
        certs.load_pkcs12(mismatched, b"pw")


def test_load_pkcs12_without_password() -> None:
    loaded = certs.load_pkcs12(p12(None), b"")
    assert loaded.certificate.pem().encode() == plain()


def test_load_pem_bundle(
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    leaf, key, ca = keyed
    key_pem = cf.key_bytes(key, password=b"pw")
    loaded = certs.load_pem_bundle(cf.pem(ca, leaf), key_pem, b"pw")
    assert loaded.certificate.der == cf.der(leaf)
    assert [c.der for c in loaded.chain] == [cf.der(ca)]
    # One combined file with the key, a DER certificate, and an unencrypted DER key.
    combined = certs.load_pem_bundle(b"", cf.pem(leaf) + cf.key_bytes(key), None)
    assert combined.certificate.der == cf.der(leaf)
    der_key = cf.key_bytes(key, encoding=ENCODING.DER, fmt=FORMAT.TraditionalOpenSSL)
    assert certs.load_pem_bundle(cf.der(leaf), der_key, b"ignored").certificate.der == cf.der(leaf)


@pytest.mark.parametrize(
    ("cert_data", "key_data", "passphrase", "message"),
    [
        ("leaf", "encrypted", b"wrong", "passphrase is wrong"),
        ("leaf", "encrypted", None, "give its passphrase"),
        ("ca", "plain", None, "does not match"),
        ("leaf", "garbage", None, "could not be read"),
        ("leaf", "certificate-only", None, "No private key"),
        ("leaf", "garbage-der", None, "could not be read"),
        ("garbage", "plain", None, "No certificate"),
        ("leaf", "dsa", None, "Only RSA and EC"),
    ],
)
def test_load_pem_bundle_failures(
    cert_data: str,
    key_data: str,
    passphrase: bytes | None,
    message: str,
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    leaf, key, ca = keyed
    certificates = {"leaf": cf.pem(leaf), "ca": cf.pem(ca), "garbage": b"garbage"}
    keys = {
        "encrypted": cf.key_bytes(key, password=b"pw"),
        "plain": cf.key_bytes(key),
        "garbage": b"garbage",
        "certificate-only": cf.pem(leaf),
        "garbage-der": b"\x30\x03\x02\x01\x00",
        "dsa": cf.key_bytes(cf.dsa_key()),
    }
    with pytest.raises(CertificateError, match=message):
        certs.load_pem_bundle(certificates[cert_data], keys[key_data], passphrase)


def test_private_key_der_round_trip() -> None:
    key = cf.ec_key()
    der = certs.private_key_to_der(key)
    assert certs.private_key_to_der(certs.private_key_from_der(der)) == der
    with pytest.raises(CertificateError, match="could not be read"):
        certs.private_key_from_der(b"junk")
    with pytest.raises(CertificateError, match="Only RSA and EC"):
        certs.private_key_from_der(cf.key_bytes(cf.dsa_key(), encoding=ENCODING.DER))
