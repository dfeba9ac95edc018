"""Describing one certificate: key, hash, usages, serial, fingerprints."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from portal.domain import certs
from portal.domain.certs import CertificateError, Code, Usage
from tests import certfactory as cf
from tests.domain.certs.helpers import NOW, check, good_cert, real_now


def test_good_3072_certificate_is_clean() -> None:
    cert = good_cert(key=cf.rsa_key(3072))
    report = check(cf.pem(cert), usage=Usage.BOTH, activate_at=NOW + timedelta(days=7))
    assert report.acceptable
    assert report.errors == report.warnings == []
    info = report.certificate
    assert info is not None
    assert info.key_type == "RSA"
    assert info.key_size == 3072
    assert info.signature_hash == "sha256"
    assert info.key_usage == ("digitalSignature", "nonRepudiation", "keyEncipherment")
    assert info.self_signed
    assert not info.is_ca
    assert info.serial == f"{cert.serial_number:X}"
    assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert info.fingerprint_sha1 == cert.fingerprint(hashes.SHA1()).hex(":").upper()  # noqa: S303
    assert info.not_before.tzinfo is not None
    assert info.not_after == cert.not_valid_after_utc
    assert [f.code for f in report.infos][:3] == [Code.SUBJECT, Code.ISSUER, Code.SERIAL]


@pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")
@pytest.mark.parametrize("serial", [0, -5])
def test_non_positive_serials(serial: int, tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest="sha256", serial=serial), now=real_now())
    assert Code.NON_POSITIVE_SERIAL in report.codes
    assert report.certificate is not None
    assert report.certificate.serial == ("0" if serial == 0 else "-5")


def test_certificate_info_refuses_garbage() -> None:
    with pytest.raises(CertificateError, match="could not be read"):
        certs.certificate_info(b"junk")
