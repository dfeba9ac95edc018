"""The other checks in detail: signature, key usage, validity, same certificate, EKU."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from portal.domain.certs import Code, Usage
from tests import certfactory as cf
from tests.domain.certs.helpers import NOW, check, good_cert, plain


def test_leaf_signature_is_checked_against_its_issuer() -> None:
    ca, _ = cf.make_ca(now=NOW)
    impostor_key = cf.rsa_key(2048, slot=2)  # claims the CA as issuer, signed by another key
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, impostor_key))
    assert Code.BAD_SIGNATURE in check(cf.pem(ca, leaf)).codes


@pytest.mark.parametrize(
    ("flags", "usage", "ok"),
    [
        (cf.SIGNING_KU, Usage.SIGNING, True),
        (("content_commitment",), Usage.SIGNING, True),
        (cf.ENCRYPTION_KU, Usage.ENCRYPTION, True),
        (cf.BOTH_KU, Usage.BOTH, True),
        (None, Usage.BOTH, True),
        (cf.ENCRYPTION_KU, Usage.SIGNING, False),
        (cf.SIGNING_KU, Usage.ENCRYPTION, False),
        (("digital_signature",), Usage.BOTH, False),
        (("key_agreement", "encipher_only"), Usage.BOTH, False),
    ],
)
def test_key_usage_rules(flags: tuple[str, ...] | None, usage: Usage, ok: bool) -> None:
    report = check(cf.pem(good_cert(usage_flags=flags)), usage=usage)
    assert (Code.KEY_USAGE_INCOMPATIBLE not in report.codes) is ok


def test_ec_key_may_encrypt_by_key_agreement() -> None:
    cert = good_cert(key_type="ec", curve="secp384r1", usage_flags=("key_agreement",))
    report = check(cf.pem(cert), usage=Usage.ENCRYPTION)
    assert report.acceptable
    assert report.certificate is not None
    assert report.certificate.curve == "P-384"


def test_not_yet_valid_now_but_valid_at_activation_is_fine() -> None:
    cert = good_cert(not_before=NOW + timedelta(days=2))
    assert Code.NOT_YET_VALID in check(cf.pem(cert)).codes
    later = check(cf.pem(cert), activate_at=NOW + timedelta(days=3))
    assert Code.NOT_YET_VALID not in later.codes


def test_expires_soon_is_measured_at_activation() -> None:
    cert = good_cert(days=50)
    assert Code.EXPIRES_SOON not in check(cf.pem(cert)).codes
    report = check(cf.pem(cert), activate_at=NOW + timedelta(days=40))
    assert Code.EXPIRES_SOON in report.codes
    assert report.acceptable


def test_expired_is_not_also_expired_at_activation() -> None:
    cert = good_cert(not_before=NOW - timedelta(days=40), not_after=NOW - timedelta(days=1))
    report = check(cf.pem(cert), activate_at=NOW + timedelta(days=1))
    assert [f.code for f in report.errors] == [Code.EXPIRED]


@pytest.mark.parametrize(
    "current", ["", "zz", None, "AB:CD", "not a fingerprint at all, <b>really</b>"]
)
def test_same_as_current_ignores_other_values(current: str | None) -> None:
    assert Code.SAME_AS_CURRENT not in check(plain(), current_sha256=current).codes


def test_usual_extended_key_usages_are_quiet() -> None:
    ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
    report = check(cf.pem(good_cert(eku=ekus)))
    assert Code.UNUSUAL_EXTENDED_KEY_USAGE not in report.codes
    assert report.certificate is not None
    assert report.certificate.extended_key_usage == ("emailProtection", "clientAuth")
