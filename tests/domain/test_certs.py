"""Certificate domain: reading uploads, judging them, generating, importing and exporting."""

from __future__ import annotations

import base64
import functools
import json
import random
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portal.domain import certs
from portal.domain.certs import (
    MAX_INPUT_BYTES,
    CertificateError,
    Code,
    Report,
    Severity,
    Usage,
    inspect,
    inspection,
)
from tests import certfactory as cf

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FORMAT = serialization.PrivateFormat
ENCODING = serialization.Encoding


def check(data: bytes, usage: Usage = Usage.BOTH, **kwargs: Any) -> Report:
    """Inspect at NOW unless told otherwise, and insist no internal error happened."""
    kwargs.setdefault("now", NOW)
    report = inspect(data, usage=usage, **kwargs)
    assert Code.INTERNAL_ERROR not in report.codes
    return report


def good_cert(**kwargs: Any) -> x509.Certificate:
    """A self-signed RSA 2048 certificate for both usages, valid from NOW - 1 day for 366 days."""
    return cf.make_cert(now=NOW, **kwargs)[0]


def real_now() -> datetime:
    """The wall clock, for certificates the openssl command dates itself."""
    return datetime.now(UTC)


# ---------------------------------------------------------------------------
# One scenario per finding code: each returns the upload and inspect's arguments.
# ---------------------------------------------------------------------------

Scenario = Callable[[Path], tuple[bytes, dict[str, Any]]]


def _csr_pem() -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(cf.name("PARTNERAS2"))
        .sign(cf.rsa_key(), hashes.SHA256())
    )
    return csr.public_bytes(ENCODING.PEM)


def _public_key_pem() -> bytes:
    return (
        cf.rsa_key()
        .public_key()
        .public_bytes(ENCODING.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _two_unrelated() -> bytes:
    first = good_cert(subject=cf.name("FIRSTAS2"))
    second = good_cert(subject=cf.name("SECONDAS2"), key=cf.rsa_key(2048, slot=2))
    return cf.pem(first, second)


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


def _with_ca() -> bytes:
    ca, ca_key = cf.make_ca(now=NOW)
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, ca_key))
    return cf.pem(ca, leaf)


def _ca_issued_by_a_ca() -> bytes:
    root, root_key = cf.make_ca(now=NOW)
    issuing, _ = cf.make_cert(now=NOW, ca=True, issuer=(root, root_key), key=cf.rsa_key(slot=2))
    return cf.pem(issuing)


@functools.cache
def _plain() -> bytes:
    return cf.pem(good_cert())


def _simple(data: Callable[[], bytes], **kwargs: Any) -> Scenario:
    return lambda _tmp: (data(), kwargs)


def _openssl(digest: str = "sha256", serial: int | None = None) -> Scenario:
    return lambda tmp: (cf.openssl_cert(tmp, digest=digest, serial=serial), {"now": real_now()})


def _fingerprint_of_plain() -> dict[str, Any]:
    digest = x509.load_pem_x509_certificate(_plain()).fingerprint(hashes.SHA256())
    return {"current_sha256": digest.hex()}  # lowercase, no colons: normalised before comparing


SCENARIOS: dict[Code, Scenario] = {
    Code.TOO_LARGE: _simple(lambda: b"-----BEGIN CERTIFICATE-----\n" + b"A" * MAX_INPUT_BYTES),
    Code.UNREADABLE: _simple(lambda: b"Dear partner, please find our certificate attached."),
    Code.PRIVATE_KEY: _simple(lambda: cf.key_bytes(cf.rsa_key())),
    Code.NO_CERTIFICATE: _simple(_public_key_pem),
    Code.CERTIFICATE_REQUEST: _simple(_csr_pem),
    Code.MULTIPLE_END_ENTITIES: _simple(_two_unrelated),
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
    Code.EXPIRES_SOON: _simple(lambda: cf.pem(good_cert(days=10))),
    Code.RSA_2048: _simple(_plain),
    Code.VALIDITY_TOO_LONG: _simple(lambda: cf.pem(good_cert(days=6 * 365))),
    Code.SAME_AS_CURRENT: lambda _tmp: (_plain(), _fingerprint_of_plain()),
    Code.UNUSUAL_EXTENDED_KEY_USAGE: _simple(
        lambda: cf.pem(good_cert(eku=[ExtendedKeyUsageOID.CODE_SIGNING]))
    ),
    Code.TRAILING_DATA: _simple(lambda: cf.der(good_cert()) + b"trailing garbage"),
    Code.CHAIN_EXPIRED: _simple(_expired_chain),
    Code.SELF_SIGNED_CA_FLAG: _simple(lambda: cf.pem(good_cert(ca=True))),
    Code.SELF_SIGNED: _simple(_plain),
    Code.SUBJECT: _simple(_plain),
    Code.ISSUER: _simple(_plain),
    Code.SERIAL: _simple(_plain),
    Code.VALIDITY: _simple(_plain),
    Code.KEY: _simple(_plain),
    Code.SIGNATURE_ALGORITHM: _simple(_plain),
    Code.KEY_USAGE: _simple(_plain),
    Code.EXTENDED_KEY_USAGE: _simple(
        lambda: cf.pem(good_cert(eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION]))
    ),
    Code.FINGERPRINT_SHA256: _simple(_plain),
    Code.FINGERPRINT_SHA1: _simple(_plain),
    Code.CHAIN: _simple(_with_ca),
}

WARNING_CODES = {
    Code.EXPIRES_SOON,
    Code.RSA_2048,
    Code.VALIDITY_TOO_LONG,
    Code.SAME_AS_CURRENT,
    Code.UNUSUAL_EXTENDED_KEY_USAGE,
    Code.TRAILING_DATA,
    Code.CHAIN_EXPIRED,
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


def test_internal_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_data: bytes) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(inspection, "extract", explode)
    report = inspect(_plain(), usage=Usage.BOTH, now=NOW)
    assert report.codes == [Code.INTERNAL_ERROR]
    assert not report.acceptable


# ---------------------------------------------------------------------------
# The good path and the report itself
# ---------------------------------------------------------------------------


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


def test_report_to_dict_is_json() -> None:
    report = check(_with_ca())
    document = json.loads(json.dumps(report.to_dict()))
    assert document["acceptable"] is True
    assert {"code", "severity", "message"} <= set(document["findings"][0])
    assert document["certificate"]["not_after"].endswith("+00:00")
    assert document["certificate"]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(document["chain"]) == 1
    assert json.loads(json.dumps(check(b"junk").to_dict()))["certificate"] is None


def test_findings_are_sorted_errors_first() -> None:
    report = check(cf.pem(good_cert(days=10, key_size=1024)))
    ranks = [("error", "warning", "info").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks)


def test_pem_method_round_trips() -> None:
    cert = good_cert()
    info = check(cf.pem(cert)).certificate
    assert info is not None
    assert x509.load_pem_x509_certificate(info.pem().encode()) == cert


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        inspect(_plain(), usage=Usage.BOTH, now=datetime(2026, 1, 1))  # noqa: DTZ001


# ---------------------------------------------------------------------------
# Input formats
# ---------------------------------------------------------------------------


def _p7(*chain: x509.Certificate, encoding: serialization.Encoding) -> bytes:
    return pkcs7.serialize_certificates(list(chain), encoding)


def _trusted(cert: x509.Certificate) -> bytes:
    # OpenSSL's trusted form: the certificate followed by trust settings (here an empty SEQUENCE).
    body = base64.encodebytes(cf.der(cert) + b"\x30\x00")
    return b"-----BEGIN TRUSTED CERTIFICATE-----\n" + body + b"-----END TRUSTED CERTIFICATE-----\n"


FORMATS: dict[str, Callable[[x509.Certificate, x509.Certificate], bytes]] = {
    "pem": lambda leaf, _ca: cf.pem(leaf),
    "pem-crlf": lambda leaf, _ca: cf.pem(leaf).replace(b"\n", b"\r\n"),
    "pem-in-text": lambda leaf, ca: b"Hello,\nhere it is:\n" + cf.pem(ca, leaf) + b"\nRegards\n",
    "pem-duplicated": lambda leaf, _ca: cf.pem(leaf, leaf),
    "der": lambda leaf, _ca: cf.der(leaf),
    "der-nul-padded": lambda leaf, _ca: cf.der(leaf) + b"\x00\x00\r\n",
    "p7b-pem": lambda leaf, ca: _p7(ca, leaf, encoding=ENCODING.PEM),
    "p7b-der": lambda leaf, ca: _p7(leaf, ca, encoding=ENCODING.DER),
    "trusted-pem": lambda leaf, _ca: _trusted(leaf),
    "base64-only": lambda leaf, _ca: base64.encodebytes(cf.der(leaf)),
    "utf16-pem": lambda leaf, _ca: cf.pem(leaf).decode().encode("utf-16"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_input_formats(fmt: str) -> None:
    ca, ca_key = cf.make_ca(now=NOW)
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, ca_key))
    report = check(FORMATS[fmt](leaf, ca))
    assert report.acceptable, report.codes
    assert Code.TRAILING_DATA not in report.codes
    assert report.certificate is not None
    assert report.certificate.der == cf.der(leaf)
    assert [c.der for c in report.chain] in ([], [cf.der(ca)])


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


def test_leaf_signature_is_checked_against_its_issuer() -> None:
    ca, _ = cf.make_ca(now=NOW)
    impostor_key = cf.rsa_key(2048, slot=2)  # claims the CA as issuer, signed by another key
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, impostor_key))
    assert Code.BAD_SIGNATURE in check(cf.pem(ca, leaf)).codes


def test_multiple_end_entities_lists_them_without_choosing() -> None:
    report = check(_two_unrelated())
    assert report.certificate is None
    assert len(report.chain) == 2
    assert "FIRSTAS2" in report.errors[0].message


def test_p7_without_certificates_is_no_certificate() -> None:
    empty = bytes.fromhex("3011" + "06092a864886f70d010702" + "a0043002" + "0201")
    assert check(empty).codes == [Code.NO_CERTIFICATE]


def test_der_csr_is_recognised() -> None:
    der = x509.load_pem_x509_csr(_csr_pem()).public_bytes(ENCODING.DER)
    assert check(der).codes == [Code.CERTIFICATE_REQUEST]


# ---------------------------------------------------------------------------
# Private keys, in every flavour
# ---------------------------------------------------------------------------


def _p12(password: bytes | None, *, with_cert: bool = True) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    cert = x509.load_pem_x509_certificate(_plain()) if with_cert else None
    return pkcs12.serialize_key_and_certificates(b"as2", cf.rsa_key(), cert, None, encryption)


# The outer layers of a PFX as older Windows and Java tools write them: BER, indefinite lengths.
_BER_PFX = bytes.fromhex("3080" + "020103" + "3080" + "06092a864886f70d010701" + "a080") + bytes(8)

PRIVATE_KEYS: dict[str, Callable[[], bytes]] = {
    "pkcs8-pem": lambda: cf.key_bytes(cf.rsa_key()),
    "pkcs8-encrypted-pem": lambda: cf.key_bytes(cf.rsa_key(), password=b"secret"),
    "rsa-traditional": lambda: cf.key_bytes(cf.rsa_key(), fmt=FORMAT.TraditionalOpenSSL),
    "rsa-traditional-encrypted": lambda: cf.key_bytes(
        cf.rsa_key(), fmt=FORMAT.TraditionalOpenSSL, password=b"secret"
    ),
    "ec-traditional": lambda: cf.key_bytes(cf.ec_key(), fmt=FORMAT.TraditionalOpenSSL),
    "dsa-traditional": lambda: cf.key_bytes(cf.dsa_key(), fmt=FORMAT.TraditionalOpenSSL),
    "openssh": lambda: cf.key_bytes(cf.ec_key(), fmt=FORMAT.OpenSSH),
    "pkcs12-no-password": lambda: _p12(None),
    "pkcs12-password": lambda: _p12(b"secret"),
    "pkcs12-key-only": lambda: _p12(b"secret", with_cert=False),
    "pkcs12-ber": lambda: _BER_PFX,
    "pkcs12-base64": lambda: base64.encodebytes(_p12(b"secret")),
    "der-pkcs8": lambda: cf.key_bytes(cf.rsa_key(), encoding=ENCODING.DER),
    "der-pkcs8-encrypted": lambda: cf.key_bytes(
        cf.rsa_key(), encoding=ENCODING.DER, password=b"secret"
    ),
    "der-rsa-traditional": lambda: cf.key_bytes(
        cf.rsa_key(), encoding=ENCODING.DER, fmt=FORMAT.TraditionalOpenSSL
    ),
    "der-ec-traditional": lambda: cf.key_bytes(
        cf.ec_key(), encoding=ENCODING.DER, fmt=FORMAT.TraditionalOpenSSL
    ),
    "cert-and-key-pem": lambda: _plain() + cf.key_bytes(cf.rsa_key()),
    "ssh2": lambda: b"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56wAAA\n",
}


@pytest.mark.parametrize("flavour", list(PRIVATE_KEYS))
def test_private_key_is_refused(flavour: str) -> None:
    report = check(PRIVATE_KEYS[flavour]())
    assert report.errors[0].code == Code.PRIVATE_KEY
    assert "compromised" in report.errors[0].message
    assert "Never send a private key" in report.errors[0].message
    assert not report.acceptable


def test_private_key_in_pem_still_shows_the_certificate() -> None:
    report = check(PRIVATE_KEYS["cert-and-key-pem"]())
    assert report.certificate is not None
    assert report.certificate.pem().encode() == _plain()


def test_pkcs12_is_refused_without_being_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    # A PFX chooses its own KDF iteration counts: opening one would hand CPU to the uploader.
    def refuse(*_args: object) -> None:
        raise AssertionError("inspect must not open PKCS#12 files")

    monkeypatch.setattr(pkcs12, "load_key_and_certificates", refuse)
    monkeypatch.setattr(pkcs12, "load_pkcs12", refuse)
    for flavour in ("pkcs12-no-password", "pkcs12-password", "pkcs12-ber"):
        report = check(PRIVATE_KEYS[flavour]())
        assert report.codes == [Code.PRIVATE_KEY]
        assert "PKCS#12" in report.errors[0].message


# ---------------------------------------------------------------------------
# Hostile and damaged input
# ---------------------------------------------------------------------------


def test_ten_megabytes_is_refused_without_parsing() -> None:
    report = check(b"\x30\x82" + b"\x00" * (10 * 1024 * 1024))
    assert report.codes == [Code.TOO_LARGE]
    assert "10240 KB" in report.errors[0].message


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed: int) -> None:
    data = random.Random(seed).randbytes(2000)
    report = check(data)
    assert not report.acceptable


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x80", b"   \n", b"-----BEGIN ", b"\xff\xfe"])
def test_tiny_inputs(data: bytes) -> None:
    assert check(data).codes == [Code.UNREADABLE]


def test_truncated_pem_says_it_was_cut() -> None:
    text = _plain()
    report = check(text[: len(text) // 2])
    assert report.codes == [Code.UNREADABLE]
    assert "cut off" in report.errors[0].message


def test_damaged_block_among_good_ones_blocks_the_upload() -> None:
    first = cf.pem(good_cert())
    damaged = first.replace(b"MII", b"M!I", 1)
    report = check(damaged + cf.pem(cf.make_ca(now=NOW)[0]))
    assert Code.UNREADABLE in report.codes
    assert not report.acceptable


def test_truncated_block_before_a_good_one() -> None:
    good = _plain()
    report = check(good[:200] + b"\n" + good)
    assert report.certificate is not None
    assert Code.UNREADABLE in report.codes


def test_der_with_trailing_garbage_is_read_with_a_warning() -> None:
    cert = good_cert()
    report = check(cf.der(cert) + b"\x01\x02garbage")
    assert report.certificate is not None
    assert report.certificate.der == cf.der(cert)
    assert Code.TRAILING_DATA in [f.code for f in report.warnings]


def test_many_unterminated_blocks_stay_fast() -> None:
    data = b"-----BEGIN CERTIFICATE-----\n" * 2000
    assert check(data[:MAX_INPUT_BYTES]).codes[0] == Code.UNREADABLE


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


def test_clean_text() -> None:
    assert certs.clean_text("a\x00b\tc\u202ed\u00a0e") == "abcd\u00a0e"


# ---------------------------------------------------------------------------
# Individual rules in more detail
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_weak_signature_hashes(digest: str, tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest=digest), now=real_now())
    weak = [f for f in report.errors if f.code == Code.WEAK_SIGNATURE_HASH]
    assert weak
    assert {"sha1": "SHA-1", "md5": "MD5"}[digest] in weak[0].message


@pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")
@pytest.mark.parametrize("serial", [0, -5])
def test_non_positive_serials(serial: int, tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest="sha256", serial=serial), now=real_now())
    assert Code.NON_POSITIVE_SERIAL in report.codes
    assert report.certificate is not None
    assert report.certificate.serial == ("0" if serial == 0 else "-5")


def test_openssl_sha256_certificate_is_clean(tmp_path: Path) -> None:
    report = check(cf.openssl_cert(tmp_path, digest="sha256"), now=real_now())
    assert [f.code for f in report.errors] == []


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


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1", "secp521r1"])
def test_allowed_curves(curve: str) -> None:
    report = check(cf.pem(good_cert(key_type="ec", curve=curve)), usage=Usage.SIGNING)
    assert report.acceptable


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
    assert Code.SAME_AS_CURRENT not in check(_plain(), current_sha256=current).codes


def test_usual_extended_key_usages_are_quiet() -> None:
    ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
    report = check(cf.pem(good_cert(eku=ekus)))
    assert Code.UNUSUAL_EXTENDED_KEY_USAGE not in report.codes
    assert report.certificate is not None
    assert report.certificate.extended_key_usage == ("emailProtection", "clientAuth")


# ---------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["abcd", "AB:CD", "ab:cd", " ab cd\n", "SHA256 Fingerprint=AB:CD", "aBcD"]
)
def test_normalise_fingerprint(spelling: str) -> None:
    assert certs.normalise_fingerprint(spelling) == "AB:CD"


@pytest.mark.parametrize("bad", ["", "abc", "xyz0", ":::"])
def test_normalise_fingerprint_refuses_non_hex(bad: str) -> None:
    with pytest.raises(CertificateError, match="not a fingerprint"):
        certs.normalise_fingerprint(bad)


# ---------------------------------------------------------------------------
# Generating, CSR
# ---------------------------------------------------------------------------


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
        certs.match_signed_certificate(pending.private_key, _plain())
    with pytest.raises(CertificateError, match="No certificate"):
        certs.match_signed_certificate(pending.private_key, b"garbage")


# ---------------------------------------------------------------------------
# Import and export
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    """A CA-issued certificate, its key and the CA, for import and export tests."""
    ca, ca_key = cf.make_ca(now=NOW)
    key = cf.rsa_key(2048, slot=4)
    leaf, _ = cf.make_cert(now=NOW, key=key, issuer=(ca, ca_key))
    return leaf, key, ca


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
    loaded = certs.load_pkcs12(_p12(None), b"")
    assert loaded.certificate.pem().encode() == _plain()


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


def test_private_key_der_round_trip() -> None:
    key = cf.ec_key()
    der = certs.private_key_to_der(key)
    assert certs.private_key_to_der(certs.private_key_from_der(der)) == der
    with pytest.raises(CertificateError, match="could not be read"):
        certs.private_key_from_der(b"junk")
    with pytest.raises(CertificateError, match="Only RSA and EC"):
        certs.private_key_from_der(cf.key_bytes(cf.dsa_key(), encoding=ENCODING.DER))


def test_certificate_info_refuses_garbage() -> None:
    with pytest.raises(CertificateError, match="could not be read"):
        certs.certificate_info(b"junk")
