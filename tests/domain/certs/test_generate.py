"""Generating identity certificates: what they contain, and refused parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from portal.domain import certs
from portal.domain.certs import CertificateError, Usage
from tests.domain.certs.helpers import NOW, check


@pytest.mark.parametrize("usage", list(Usage))
def test_generate_identity_certificate(usage: Usage) -> None:
    generated = certs.generate_identity_certificate(
        as2_id="ACMEAS2", organisation="Acme Corp", usage=usage, now=NOW, key_size=2048, days=365
    )
    info = generated.certificate
    assert info.subject == "O=Acme Corp,CN=ACMEAS2"
    assert info.self_signed
    assert not info.is_ca
    assert info.signature_hash == "sha256"
    assert info.key_size == 2048
    assert int(info.serial, 16) > 0
    assert info.not_after == NOW + timedelta(days=365)
    assert info.not_before <= NOW
    expected = {
        Usage.SIGNING: ("digitalSignature", "nonRepudiation"),
        Usage.ENCRYPTION: ("keyEncipherment",),
        Usage.BOTH: ("digitalSignature", "nonRepudiation", "keyEncipherment"),
    }[usage]
    assert info.key_usage == expected
    report = check(info.der, usage=usage, activate_at=NOW)
    assert report.acceptable, report.codes
    assert certs.certificate_info(info.der) == info
    assert isinstance(generated.private_key, rsa.RSAPrivateKey)


def test_generate_defaults_to_3072_bits_and_two_years() -> None:
    generated = certs.generate_identity_certificate(
        as2_id="ACMEAS2", organisation="Acme Corp", usage=Usage.BOTH, now=NOW
    )
    assert generated.certificate.key_size == 3072
    assert generated.certificate.not_after == NOW + timedelta(days=730)
    report = check(generated.certificate.der)
    assert report.acceptable
    assert report.warnings == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_size": 1024}, "2048, 3072, 4096"),
        ({"key_size": 8192}, "2048, 3072, 4096"),
        ({"days": 0}, "1 to 3650 days"),
        ({"as2_id": ""}, "AS2 ID"),
        ({"as2_id": "X" * 65}, "AS2 ID"),
        ({"as2_id": "bad\nid"}, "AS2 ID"),
        ({"organisation": "  "}, "organisation"),
    ],
)
def test_generate_refuses_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "as2_id": "ACMEAS2",
        "organisation": "Acme",
        "usage": Usage.BOTH,
        "now": NOW,
        "key_size": 2048,
        **kwargs,
    }
    with pytest.raises(CertificateError, match=message):
        certs.generate_identity_certificate(**arguments)
