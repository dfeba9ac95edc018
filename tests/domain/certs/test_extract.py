"""What is in an upload: every input format, every private key flavour, hostile input."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from portal.domain.certs import MAX_INPUT_BYTES, Code
from tests import certfactory as cf
from tests.domain.certs.helpers import ENCODING, FORMAT, NOW, check, csr_pem, good_cert, p12, plain

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


def test_p7_without_certificates_is_no_certificate() -> None:
    empty = bytes.fromhex("3011" + "06092a864886f70d010702" + "a0043002" + "0201")
    assert check(empty).codes == [Code.NO_CERTIFICATE]


def test_der_csr_is_recognised() -> None:
    der = x509.load_pem_x509_csr(csr_pem()).public_bytes(ENCODING.DER)
    assert check(der).codes == [Code.CERTIFICATE_REQUEST]


# ---------------------------------------------------------------------------
# Private keys, in every flavour
# ---------------------------------------------------------------------------


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
    "pkcs12-no-password": lambda: p12(None),
    "pkcs12-password": lambda: p12(b"secret"),
    "pkcs12-key-only": lambda: p12(b"secret", with_cert=False),
    "pkcs12-ber": lambda: _BER_PFX,
    "pkcs12-base64": lambda: base64.encodebytes(p12(b"secret")),
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
    "cert-and-key-pem": lambda: plain() + cf.key_bytes(cf.rsa_key()),
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
    assert report.certificate.pem().encode() == plain()


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
    text = plain()
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
    good = plain()
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
