"""Several certificates in one file: the sender's own, and the chain above it."""

from __future__ import annotations

from portal.domain.certs import Code
from tests import certfactory as cf
from tests.domain.certs.helpers import NOW, check, two_unrelated


def test_chain_is_ordered_from_the_leaf_up() -> None:
    root, root_key = cf.make_ca(now=NOW, cn="Root CA")
    middle, middle_key = cf.make_cert(
        now=NOW,
        key=cf.rsa_key(2048, slot=3),
        ca=True,
        usage_flags=cf.CA_KU,
        subject=cf.name("Issuing CA"),
        issuer=(root, root_key),
    )
    leaf, _ = cf.make_cert(now=NOW, issuer=(middle, middle_key))
    report = check(cf.pem(root, leaf, middle))
    assert report.certificate is not None
    assert report.certificate.der == cf.der(leaf)
    assert [c.der for c in report.chain] == [cf.der(middle), cf.der(root)]
    assert not report.certificate.self_signed
    assert Code.SELF_SIGNED not in report.codes


def test_multiple_end_entities_lists_them_without_choosing() -> None:
    report = check(two_unrelated())
    assert report.certificate is None
    assert len(report.chain) == 2
    assert "FIRSTAS2" in report.errors[0].message
