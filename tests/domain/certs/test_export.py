"""Exporting: PKCS#12 (modern and legacy), PEM, DER and PKCS#7."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from portal.domain import certs
from portal.domain.certs import CertificateError, Code
from tests import certfactory as cf
from tests.domain.certs.helpers import check


@pytest.mark.parametrize("legacy", [False, True])
def test_pkcs12_round_trip(
    legacy: bool, keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    leaf, key, ca = keyed
    blob = certs.export_pkcs12(
        private_key=key,
        certificate_der=cf.der(leaf),
        chain_ders=[cf.der(ca)],
        passphrase=b"correct horse",
        friendly_name=b"ACMEAS2",
        legacy=legacy,
    )
    loaded = certs.load_pkcs12(blob, b"correct horse")
    assert loaded.certificate.der == cf.der(leaf)
    assert [c.der for c in loaded.chain] == [cf.der(ca)]
    assert certs.private_key_to_der(loaded.private_key) == certs.private_key_to_der(key)
    assert check(blob).codes[0] == Code.PRIVATE_KEY  # and a partner uploading it is stopped


@pytest.mark.parametrize(("legacy", "cipher"), [(False, "AES-256-CBC"), (True, "3-KeyTripleDES")])
def test_pkcs12_encryption_algorithms(
    legacy: bool,
    cipher: str,
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
    tmp_path: Path,
) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("the openssl command is not installed")
    leaf, key, _ = keyed
    blob = certs.export_pkcs12(
        private_key=key,
        certificate_der=cf.der(leaf),
        chain_ders=[],
        passphrase=b"pw",
        friendly_name=b"x",
        legacy=legacy,
    )
    path = tmp_path / "out.p12"
    path.write_bytes(blob)
    command = [binary, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "pass:pw"]
    if legacy:
        command.append("-legacy")
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    assert cipher in result.stdout + result.stderr


def test_export_pkcs12_refusals(
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    leaf, key, ca = keyed
    arguments: dict[str, Any] = {
        "private_key": key,
        "certificate_der": cf.der(leaf),
        "chain_ders": [],
        "friendly_name": b"x",
    }
    with pytest.raises(CertificateError, match="needs a passphrase"):
        certs.export_pkcs12(**arguments, passphrase=b"")
    with pytest.raises(CertificateError, match="does not belong"):
        certs.export_pkcs12(**{**arguments, "certificate_der": cf.der(ca)}, passphrase=b"pw")
    with pytest.raises(CertificateError, match="could not be read"):
        certs.export_pkcs12(**{**arguments, "certificate_der": b"junk"}, passphrase=b"pw")


def test_export_formats_round_trip(
    keyed: tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    leaf, _, ca = keyed
    der = cf.der(leaf)
    assert certs.export_der(der) == der
    assert x509.load_pem_x509_certificate(certs.export_pem(der)) == leaf
    p7c = certs.export_p7c(der, [cf.der(ca)])
    assert pkcs7.load_der_pkcs7_certificates(p7c) == [leaf, ca]
    report = check(p7c)
    assert report.certificate is not None
    assert report.certificate.der == der
    assert [c.der for c in report.chain] == [cf.der(ca)]
    with pytest.raises(CertificateError, match="could not be read"):
        certs.export_pem(b"not a certificate")
