"""Key and signature strength: weak hashes refused, NIST curves accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.domain.certs import Code, Usage
from tests import certfactory as cf
from tests.domain.certs.helpers import check, good_cert, real_now


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_weak_signature_hashes(digest: str, tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest=digest), now=real_now())
    weak = [f for f in report.errors if f.code == Code.WEAK_SIGNATURE_HASH]
    assert weak
    assert {"sha1": "SHA-1", "md5": "MD5"}[digest] in weak[0].message


def test_openssl_sha256_certificate_is_clean(tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest="sha256"), now=real_now())
    assert [f.code for f in report.errors] == []


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1", "secp521r1"])
def test_allowed_curves(curve: str) -> None:
    report = check(cf.pem(good_cert(key_type="ec", curve=curve)), usage=Usage.SIGNING)
    assert report.acceptable
