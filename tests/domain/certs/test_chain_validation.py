"""A certificate sent with its CA certificates: the chain is validated link by link.

Kept (`Report.intermediates`): the issuers from the leaf's up, each having signed the one
below it, without the self-signed root (a verifier must trust the root itself). Refused:
a CA certificate of the issuer's name that did not sign (`bad_signature` for the leaf,
`chain_bad_signature` higher up) and an issuer that may not issue (`chain_not_ca`).
Warned: an issuer outside its validity (`chain_expired`, `chain_not_yet_valid`) and a
certificate that is not part of the chain (`chain_unrelated`, not kept).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs7

from portal.domain.certs import (
    CertificateInfo,
    Code,
    Report,
    Severity,
    armour_pem,
    export_pem,
    split_pem_certificates,
)
from tests import certfactory as cf
from tests.domain.certs.helpers import ENCODING, NOW, check


@pytest.fixture(scope="module")
def pki() -> cf.Pki:
    return cf.make_pki(now=NOW)


def ders(infos: list[CertificateInfo]) -> list[bytes]:
    return [c.der for c in infos]


def messages(report: Report, code: Code) -> list[str]:
    return [f.message for f in report.findings if f.code == code]


def not_info(report: Report) -> list[str]:
    return [str(f.code) for f in report.findings if f.severity is not Severity.INFO]


@pytest.mark.parametrize(
    "order",
    [("leaf", "intermediate", "root"), ("root", "intermediate", "leaf"),
     ("intermediate", "root", "leaf")],
    ids=["leaf-first", "root-first", "mixed"],
)  # fmt: skip
def test_chain_is_kept_leaf_issuer_first_and_the_root_dropped(
    pki: cf.Pki, order: tuple[str, ...]
) -> None:
    report = check(cf.pem(*(getattr(pki, part) for part in order)))
    assert report.acceptable
    assert not_info(report) == []
    assert report.certificate is not None
    assert report.certificate.der == cf.der(pki.leaf)
    assert ders(report.intermediates) == [cf.der(pki.intermediate)]
    assert ders(report.chain) == [cf.der(pki.intermediate), cf.der(pki.root)]
    (message,) = messages(report, Code.CHAIN)
    assert "Partner Issuing CA" in message
    assert "Partner Root CA" in message
    assert "is not kept" in message
    assert report.to_dict()["intermediates"][0]["subject"] == report.intermediates[0].subject


def test_without_the_root_the_intermediate_is_kept(pki: cf.Pki) -> None:
    report = check(cf.pem(pki.leaf, pki.intermediate))
    assert not_info(report) == []
    assert ders(report.intermediates) == [cf.der(pki.intermediate)]
    (message,) = messages(report, Code.CHAIN)
    assert "not kept" not in message


def test_pkcs7_bundle_is_read_like_pem(pki: cf.Pki) -> None:
    p7c = pkcs7.serialize_certificates([pki.root, pki.leaf, pki.intermediate], ENCODING.DER)
    report = check(p7c)
    assert not_info(report) == []
    assert ders(report.intermediates) == [cf.der(pki.intermediate)]


def test_two_intermediates_are_kept_in_order(pki: cf.Pki) -> None:
    issuing, issuing_key = cf.make_intermediate(
        now=NOW, issuer=(pki.intermediate, pki.intermediate_key), cn="Partner AS2 CA", slot=5
    )
    leaf, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072), issuer=(issuing, issuing_key), days=400)
    report = check(cf.pem(pki.root, pki.intermediate, leaf, issuing))
    assert not_info(report) == []
    assert ders(report.intermediates) == [cf.der(issuing), cf.der(pki.intermediate)]


def test_leaf_issued_by_the_root_keeps_nothing(pki: cf.Pki) -> None:
    leaf, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072), issuer=(pki.root, pki.root_key))
    report = check(cf.pem(leaf, pki.root))
    assert report.acceptable
    assert report.intermediates == []
    assert ders(report.chain) == [cf.der(pki.root)]


def test_self_signed_certificate_keeps_nothing() -> None:
    cert, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072))
    report = check(cf.pem(cert))
    assert report.intermediates == []
    assert report.chain == []
    assert Code.CHAIN not in report.codes


# ---------------------------------------------------------------------------
# Broken chains
# ---------------------------------------------------------------------------


def test_intermediate_of_another_name_is_unrelated_and_not_kept(pki: cf.Pki) -> None:
    stranger, _ = cf.make_intermediate(
        now=NOW, issuer=(pki.root, pki.root_key), cn="Some Other CA", slot=6
    )
    report = check(cf.pem(pki.leaf, stranger))
    assert report.acceptable
    assert not_info(report) == [Code.CHAIN_UNRELATED]
    (message,) = messages(report, Code.CHAIN_UNRELATED)
    assert "'O=Partner Trust Services,CN=Some Other CA' in the file did not issue" in message
    assert "we do not keep it" in message
    assert report.intermediates == []


def test_unrelated_root_is_not_kept(pki: cf.Pki) -> None:
    other_root, _ = cf.make_cert(
        now=NOW, key=cf.rsa_key(2048, slot=7), ca=True, usage_flags=cf.CA_KU,
        subject=cf.name("Unrelated Root"), days=3650,
    )  # fmt: skip
    report = check(cf.pem(pki.leaf, pki.intermediate, other_root))
    assert not_info(report) == [Code.CHAIN_UNRELATED]
    assert ders(report.intermediates) == [cf.der(pki.intermediate)]


def test_intermediate_of_the_issuers_name_that_did_not_sign_the_leaf_is_refused(
    pki: cf.Pki,
) -> None:
    # The CA was re-keyed: same name, another key. The partner sent the wrong one.
    rekeyed, _ = cf.make_intermediate(now=NOW, issuer=(pki.root, pki.root_key), slot=8)
    report = check(cf.pem(pki.leaf, rekeyed, pki.root))
    assert not report.acceptable
    assert [str(f.code) for f in report.errors] == [Code.BAD_SIGNATURE]
    (message,) = messages(report, Code.BAD_SIGNATURE)
    assert "does not verify with the key of the CA certificate" in message
    assert "'O=Partner Trust Services,CN=Partner Issuing CA'" in message


def test_the_issuer_that_signed_is_preferred_over_a_namesake(pki: cf.Pki) -> None:
    rekeyed, _ = cf.make_intermediate(now=NOW, issuer=(pki.root, pki.root_key), slot=8)
    report = check(cf.pem(pki.leaf, rekeyed, pki.intermediate))
    assert report.acceptable
    assert not_info(report) == [Code.CHAIN_UNRELATED]
    assert ders(report.intermediates) == [cf.der(pki.intermediate)]


def test_intermediate_not_signed_by_the_root_sent_is_refused(pki: cf.Pki) -> None:
    # A root of the right name but another key: the intermediate does not chain to it.
    false_root, _ = cf.make_cert(
        now=NOW, key=cf.rsa_key(2048, slot=9), ca=True, usage_flags=cf.CA_KU,
        subject=pki.root.subject, days=3650,
    )  # fmt: skip
    report = check(cf.pem(pki.leaf, pki.intermediate, false_root))
    assert [str(f.code) for f in report.errors] == [Code.CHAIN_BAD_SIGNATURE]
    (message,) = messages(report, Code.CHAIN_BAD_SIGNATURE)
    assert "'O=Partner Trust Services,CN=Partner Issuing CA' in the file names" in message
    assert "do not belong together" in message


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ca": False}, "is not a CA (basic constraints CA:TRUE)"),
        ({"usage_flags": cf.SIGNING_KU}, "has a key usage without Certificate Sign"),
    ],
    ids=["ca-false", "no-keycertsign"],
)
def test_intermediate_that_may_not_issue_is_refused(
    pki: cf.Pki,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    bad, bad_key = cf.make_intermediate(
        now=NOW, issuer=(pki.root, pki.root_key), cn="Not A CA", slot=10, **overrides
    )
    leaf, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072), issuer=(bad, bad_key), days=400)
    report = check(cf.pem(leaf, bad, pki.root))
    assert report.certificate is not None
    assert report.certificate.der == cf.der(leaf)
    assert [str(f.code) for f in report.errors] == [Code.CHAIN_NOT_CA]
    (message,) = messages(report, Code.CHAIN_NOT_CA)
    assert "'O=Partner Trust Services,CN=Not A CA' in the file issued" in message
    assert reason in message


def test_expired_intermediate_is_warned_and_kept(pki: cf.Pki) -> None:
    old, old_key = cf.make_intermediate(
        now=NOW, issuer=(pki.root, pki.root_key), cn="Old CA", slot=11,
        not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=2),
    )  # fmt: skip
    leaf, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072), issuer=(old, old_key), days=400)
    report = check(cf.pem(leaf, old, pki.root))
    assert report.acceptable
    assert not_info(report) == [Code.CHAIN_EXPIRED]
    (message,) = messages(report, Code.CHAIN_EXPIRED)
    assert "'O=Partner Trust Services,CN=Old CA' included in the file expired on" in message
    assert ders(report.intermediates) == [cf.der(old)]


def test_intermediate_not_yet_valid_is_warned(pki: cf.Pki) -> None:
    early, early_key = cf.make_intermediate(
        now=NOW, issuer=(pki.root, pki.root_key), cn="Future CA", slot=12,
        not_before=NOW + timedelta(days=3),
    )  # fmt: skip
    leaf, _ = cf.make_cert(now=NOW, key=cf.rsa_key(3072), issuer=(early, early_key), days=400)
    report = check(cf.pem(leaf, early))
    assert not_info(report) == [Code.CHAIN_NOT_YET_VALID]
    (message,) = messages(report, Code.CHAIN_NOT_YET_VALID)
    assert "'O=Partner Trust Services,CN=Future CA' included in the file only becomes" in message


def test_time_is_an_argument(pki: cf.Pki) -> None:
    later = NOW + timedelta(days=5 * 365 + 1)  # the intermediate has expired by then
    report = check(cf.pem(pki.leaf, pki.intermediate), now=later)
    assert Code.CHAIN_EXPIRED in report.codes


def test_armour_pem_is_what_cryptography_writes_and_splits_back() -> None:
    pki = cf.make_pki(now=NOW)
    ders = [cf.der(c) for c in (pki.leaf, pki.intermediate, pki.root)]
    texts = [armour_pem(der) for der in ders]
    assert texts == [export_pem(der).decode("ascii") for der in ders]
    assert split_pem_certificates("".join(texts)) == texts
    assert split_pem_certificates("") == []
