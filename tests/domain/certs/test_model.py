"""Codes, severities and reports: every finding code is reachable, with its severity."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portal.domain.certs import MAX_INPUT_BYTES, Code, Severity, Usage
from tests import certfactory as cf
from tests.domain.certs.helpers import (
    ENCODING,
    NOW,
    check,
    csr_pem,
    good_cert,
    plain,
    real_now,
    two_unrelated,
    with_ca,
)

# ---------------------------------------------------------------------------
# One scenario per finding code: each returns the upload and inspect's arguments.
# ---------------------------------------------------------------------------


Scenario = Callable[[Path], tuple[bytes, dict[str, Any]]]


def _public_key_pem() -> bytes:
    return (
        cf.rsa_key()
        .public_key()
        .public_bytes(ENCODING.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _broken_name() -> bytes:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "ZZZZ", _type=x509.name._ASN1Type.UTF8String)]
    )
    der = cf.der(good_cert(subject=subject))
    # Invalid UTF-8 inside the UTF8String of the subject and issuer names.
    return der.replace(b"\x0c\x04ZZZZ", b"\x0c\x04\xff\xfe\xff\xff")


def _bad_signature() -> bytes:
    der = cf.der(good_cert())
    return der[:-1] + bytes([der[-1] ^ 0x01])


def _expired_chain() -> bytes:
    ca, ca_key = cf.make_cert(
        now=NOW,
        key=cf.rsa_key(2048, slot=1),
        ca=True,
        usage_flags=cf.CA_KU,
        subject=cf.name("Old CA"),
        not_before=NOW - timedelta(days=800),
        not_after=NOW - timedelta(days=1),
    )
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, ca_key))
    return cf.pem(leaf, ca)


def _broken_chain(case: str) -> Callable[[], bytes]:
    """A CA-issued certificate sent with a CA certificate that breaks the chain."""

    def build() -> bytes:
        pki = cf.make_pki(now=NOW)
        root = (pki.root, pki.root_key)
        if case == "unrelated":
            return cf.pem(pki.leaf, cf.make_intermediate(now=NOW, issuer=root, cn="Other")[0])
        if case == "not_yet_valid":
            early, early_key = cf.make_intermediate(
                now=NOW, issuer=root, not_before=NOW + timedelta(days=2)
            )
            return cf.pem(cf.make_cert(now=NOW, issuer=(early, early_key))[0], early)
        if case == "not_ca":
            bad, bad_key = cf.make_intermediate(now=NOW, issuer=root, ca=False)
            return cf.pem(cf.make_cert(now=NOW, issuer=(bad, bad_key))[0], bad)
        false_root, _ = cf.make_cert(  # the root's name on another key
            now=NOW, key=cf.rsa_key(2048, slot=9), ca=True, subject=pki.root.subject
        )
        return cf.pem(pki.leaf, pki.intermediate, false_root)

    return build


def _ca_issued_by_a_ca() -> bytes:
    root, root_key = cf.make_ca(now=NOW)
    issuing, _ = cf.make_cert(now=NOW, ca=True, issuer=(root, root_key), key=cf.rsa_key(slot=2))
    return cf.pem(issuing)


def _simple(data: Callable[[], bytes], **kwargs: Any) -> Scenario:
    return lambda _tmp: (data(), kwargs)


def _openssl(digest: str = "sha256", serial: int | None = None) -> Scenario:
    return lambda tmp: (cf.openssl_cert(tmp, digest=digest, serial=serial), {"now": real_now()})


def _fingerprint_of_plain() -> dict[str, Any]:
    digest = x509.load_pem_x509_certificate(plain()).fingerprint(hashes.SHA256())
    return {"current_sha256": digest.hex()}  # lowercase, no colons: normalised before comparing


SCENARIOS: dict[Code, Scenario] = {
    Code.TOO_LARGE: _simple(lambda: b"-----BEGIN CERTIFICATE-----\n" + b"A" * MAX_INPUT_BYTES),
    Code.UNREADABLE: _simple(lambda: b"Dear partner, please find our certificate attached."),
    Code.PRIVATE_KEY: _simple(lambda: cf.key_bytes(cf.rsa_key())),
    Code.NO_CERTIFICATE: _simple(_public_key_pem),
    Code.CERTIFICATE_REQUEST: _simple(csr_pem),
    Code.MULTIPLE_END_ENTITIES: _simple(two_unrelated),
    Code.EXPIRED: _simple(
        lambda: cf.pem(
            good_cert(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
        )
    ),
    Code.NOT_YET_VALID: _simple(lambda: cf.pem(good_cert(not_before=NOW + timedelta(days=1)))),
    Code.EXPIRED_AT_ACTIVATION: _simple(
        lambda: cf.pem(good_cert(days=60)), activate_at=NOW + timedelta(days=90)
    ),
    Code.RSA_KEY_TOO_SMALL: _simple(lambda: cf.pem(good_cert(key_size=1024))),
    Code.EC_CURVE_NOT_ALLOWED: _simple(
        lambda: cf.pem(good_cert(key_type="ec", curve="secp256k1")), usage=Usage.SIGNING
    ),
    Code.DSA_KEY: _simple(lambda: cf.pem(good_cert(key_type="dsa")), usage=Usage.SIGNING),
    Code.UNSUPPORTED_KEY_TYPE: _simple(
        lambda: cf.pem(good_cert(key_type="ed25519", usage_flags=cf.SIGNING_KU)),
        usage=Usage.SIGNING,
    ),
    Code.WEAK_SIGNATURE_HASH: _openssl("sha1"),
    Code.CA_CERTIFICATE: _simple(_ca_issued_by_a_ca),
    Code.KEY_USAGE_INCOMPATIBLE: _simple(
        lambda: cf.pem(good_cert(usage_flags=cf.ENCRYPTION_KU)), usage=Usage.SIGNING
    ),
    Code.NON_POSITIVE_SERIAL: _openssl(serial=-5),
    Code.MALFORMED_EXTENSION: _simple(
        lambda: cf.pem(good_cert(usage_flags=None, extra_extensions=[cf.corrupt_extension()]))
    ),
    Code.MALFORMED_CERTIFICATE: _simple(_broken_name),
    Code.BAD_SIGNATURE: _simple(_bad_signature),
    Code.CHAIN_BAD_SIGNATURE: _simple(_broken_chain("bad_signature")),
    Code.CHAIN_NOT_CA: _simple(_broken_chain("not_ca")),
    Code.EXPIRES_SOON: _simple(lambda: cf.pem(good_cert(days=10))),
    Code.RSA_2048: _simple(plain),
    Code.VALIDITY_TOO_LONG: _simple(lambda: cf.pem(good_cert(days=6 * 365))),
    Code.SAME_AS_CURRENT: lambda _tmp: (plain(), _fingerprint_of_plain()),
    Code.UNUSUAL_EXTENDED_KEY_USAGE: _simple(
        lambda: cf.pem(good_cert(eku=[ExtendedKeyUsageOID.CODE_SIGNING]))
    ),
    Code.TRAILING_DATA: _simple(lambda: cf.der(good_cert()) + b"trailing garbage"),
    Code.CHAIN_EXPIRED: _simple(_expired_chain),
    Code.CHAIN_NOT_YET_VALID: _simple(_broken_chain("not_yet_valid")),
    Code.CHAIN_UNRELATED: _simple(_broken_chain("unrelated")),
    Code.SELF_SIGNED_CA_FLAG: _simple(lambda: cf.pem(good_cert(ca=True))),
    Code.SELF_SIGNED: _simple(plain),
    Code.SUBJECT: _simple(plain),
    Code.ISSUER: _simple(plain),
    Code.SERIAL: _simple(plain),
    Code.VALIDITY: _simple(plain),
    Code.KEY: _simple(plain),
    Code.SIGNATURE_ALGORITHM: _simple(plain),
    Code.KEY_USAGE: _simple(plain),
    Code.EXTENDED_KEY_USAGE: _simple(
        lambda: cf.pem(good_cert(eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION]))
    ),
    Code.FINGERPRINT_SHA256: _simple(plain),
    Code.FINGERPRINT_SHA1: _simple(plain),
    Code.CHAIN: _simple(with_ca),
}


WARNING_CODES = {
    Code.EXPIRES_SOON,
    Code.RSA_2048,
    Code.VALIDITY_TOO_LONG,
    Code.SAME_AS_CURRENT,
    Code.UNUSUAL_EXTENDED_KEY_USAGE,
    Code.TRAILING_DATA,
    Code.CHAIN_EXPIRED,
    Code.CHAIN_NOT_YET_VALID,
    Code.CHAIN_UNRELATED,
    Code.SELF_SIGNED_CA_FLAG,
}


INFO_CODES = {
    Code.SELF_SIGNED,
    Code.SUBJECT,
    Code.ISSUER,
    Code.SERIAL,
    Code.VALIDITY,
    Code.KEY,
    Code.SIGNATURE_ALGORITHM,
    Code.KEY_USAGE,
    Code.EXTENDED_KEY_USAGE,
    Code.FINGERPRINT_SHA256,
    Code.FINGERPRINT_SHA1,
    Code.CHAIN,
}


def expected_severity(code: Code) -> Severity:
    """The severity a code is documented with."""
    if code in WARNING_CODES:
        return Severity.WARNING
    return Severity.INFO if code in INFO_CODES else Severity.ERROR


def test_every_code_has_a_scenario() -> None:
    # internal_error has its own test: it needs a bug, which a certificate cannot cause.
    assert set(SCENARIOS) == set(Code) - {Code.INTERNAL_ERROR}


@pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")
@pytest.mark.parametrize("code", list(SCENARIOS), ids=str)
def test_finding_code(code: Code, tmp_path: Path) -> None:
    data, kwargs = SCENARIOS[code](tmp_path)
    kwargs.setdefault("usage", Usage.BOTH)
    report = check(data, **kwargs)
    found = [f for f in report.findings if f.code == code]
    assert found, report.codes
    assert found[0].severity is expected_severity(code)
    assert found[0].message.strip()
    if found[0].severity is Severity.ERROR:
        assert not report.acceptable


# ---------------------------------------------------------------------------
# The report and the certificate description
# ---------------------------------------------------------------------------


def test_report_to_dict_is_json() -> None:
    report = check(with_ca())
    document = json.loads(json.dumps(report.to_dict()))
    assert document["acceptable"] is True
    assert {"code", "severity", "message"} <= set(document["findings"][0])
    assert document["certificate"]["not_after"].endswith("+00:00")
    assert document["certificate"]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(document["chain"]) == 1
    assert json.loads(json.dumps(check(b"junk").to_dict()))["certificate"] is None


def test_pem_method_round_trips() -> None:
    cert = good_cert()
    info = check(cf.pem(cert)).certificate
    assert info is not None
    assert x509.load_pem_x509_certificate(info.pem().encode()) == cert
