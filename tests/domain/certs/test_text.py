"""Text from certificates: hidden characters removed; fingerprints in any spelling."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from portal.domain import certs
from portal.domain.certs import CertificateError
from tests import certfactory as cf
from tests.domain.certs.helpers import check, good_cert


def test_clean_text() -> None:
    assert certs.clean_text("a\x00b\tc\u202ed\u00a0e") == "abcd\u00a0e"


def test_subject_with_html_and_control_characters() -> None:
    nasty = "<script>alert(1)</script>\x07\x1b[31m\u202eevil\nX"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, nasty),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org\u200b\u2028Ltd"),
        ]
    )
    report = check(cf.pem(good_cert(subject=subject)))
    assert report.certificate is not None
    shown = report.certificate.subject
    assert "script" in shown  # kept as text: templates escape HTML
    for text in [shown, report.certificate.issuer, *(f.message for f in report.findings)]:
        assert not any(ch in text for ch in "\x07\x1b\u202e\n\u200b\u2028")


@pytest.mark.parametrize(
    "spelling", ["abcd", "AB:CD", "ab:cd", " ab cd\n", "SHA256 Fingerprint=AB:CD", "aBcD"]
)
def test_normalise_fingerprint(spelling: str) -> None:
    assert certs.normalise_fingerprint(spelling) == "AB:CD"


@pytest.mark.parametrize("bad", ["", "abc", "xyz0", ":::"])
def test_normalise_fingerprint_refuses_non_hex(bad: str) -> None:
    with pytest.raises(CertificateError, match="not a fingerprint"):
        certs.normalise_fingerprint(bad)
