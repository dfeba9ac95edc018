"""Several keys in one PKCS#12, each under its alias; read back by cryptography, OpenSSL, Java."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.domain import certs
from portal.domain.certs import CertificateError, KeystoreEntry
from portal.domain.certs.keystore import assemble_pkcs12, split_pkcs12
from tests import certfactory as cf
from tests import keystorefiles
from tests.domain.certs.helpers import NOW

PASSPHRASE = b"correct horse battery"
BAD_FILE = "Invalid password or PKCS12 data"


@pytest.fixture(scope="module")
def generations() -> list[KeystoreEntry]:
    """Three generations: two self-signed on their own keys, one CA-issued with its chain."""
    ca, ca_key = cf.make_ca(now=NOW)
    made = []
    for slot, issuer in ((5, None), (6, None), (7, (ca, ca_key))):
        key = cf.rsa_key(2048, slot=slot)
        cert, _ = cf.make_cert(now=NOW, key=key, subject=cf.name("ACMEAS2"), issuer=issuer)
        chain = [cf.der(ca)] if issuer else []
        made.append((key, cert, chain))
    return [
        KeystoreEntry(f"acmeas2-{slot}", key, cf.der(cert), chain)
        for slot, (key, cert, chain) in enumerate(made)
    ]


def _der(cert: x509.Certificate) -> bytes:
    return cf.der(cert)


@pytest.mark.parametrize("legacy", [False, True])
def test_every_key_is_read_back_under_its_alias_with_its_certificate(
    generations: list[KeystoreEntry], legacy: bool
) -> None:
    data = certs.export_keystore(generations, passphrase=PASSPHRASE, legacy=legacy)

    found = keystorefiles.entries(data, PASSPHRASE)

    assert sorted(e.alias for e in found) == sorted(g.alias for g in generations)
    by_alias = {e.alias: e for e in found}
    for wanted in generations:
        entry = by_alias[wanted.alias]
        assert _der(entry.certificate) == wanted.certificate_der
        assert entry.key_matches
        assert certs.private_key_to_der(entry.key) == certs.private_key_to_der(  # type: ignore[arg-type]
            wanted.private_key
        )
    everything = [_der(c) for c in keystorefiles.certificates(data, PASSPHRASE)]
    ca_der = generations[2].chain_ders[0]
    assert everything.count(ca_der) == 1  # the chain once, not once per key
    assert sorted(everything) == sorted([*(g.certificate_der for g in generations), ca_der])


def test_the_whole_file_needs_the_passphrase(generations: list[KeystoreEntry]) -> None:
    data = certs.export_keystore(generations, passphrase=PASSPHRASE)
    with pytest.raises(ValueError, match=BAD_FILE):
        pkcs12.load_pkcs12(data, b"wrong passphrase")
    tampered = bytearray(data)
    tampered[200] ^= 1
    with pytest.raises(ValueError, match=BAD_FILE):
        pkcs12.load_pkcs12(bytes(tampered), PASSPHRASE)


def test_one_entry_is_cryptographys_own_file(generations: list[KeystoreEntry]) -> None:
    data = certs.export_keystore(generations[2:], passphrase=PASSPHRASE)
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.cert is not None
    assert loaded.cert.friendly_name == b"acmeas2-2"
    assert [_der(c.certificate) for c in loaded.additional_certs] == list(generations[2].chain_ders)


@pytest.mark.parametrize(
    "passphrase",
    ["plain ascii words", "pässwörd-€uro", "日本語のパスフレーズ", "emoji 😀 outside BMP"],
)
def test_the_mac_is_derived_as_cryptography_derives_it(
    generations: list[KeystoreEntry], passphrase: str
) -> None:
    secret = passphrase.encode()
    data = certs.export_keystore(generations[:2], passphrase=secret)
    assert len(keystorefiles.entries(data, secret)) == 2
    with pytest.raises(ValueError, match=BAD_FILE):
        pkcs12.load_pkcs12(data, secret + b"x")


def test_the_mac_uses_the_digest_and_iterations_cryptography_chose(
    generations: list[KeystoreEntry],
) -> None:
    oids = set()
    for legacy in (False, True):
        parts = split_pkcs12(certs.export_keystore(generations, passphrase=b"pw", legacy=legacy))
        one = split_pkcs12(certs.export_keystore(generations[:1], passphrase=b"pw", legacy=legacy))
        assert parts.mac_algorithm == one.mac_algorithm
        assert parts.iterations == one.iterations
        assert parts.salt_length == one.salt_length
        oids.add(parts.mac_oid)
    assert len(oids) == 2  # SHA-256 by default, SHA-1 for legacy files


def test_refusals(generations: list[KeystoreEntry]) -> None:
    with pytest.raises(CertificateError, match="at least one key"):
        certs.export_keystore([], passphrase=PASSPHRASE)
    twin = KeystoreEntry("ACMEAS2-0", generations[1].private_key, generations[1].certificate_der)
    with pytest.raises(CertificateError, match="share an alias"):
        certs.export_keystore([generations[0], twin], passphrase=PASSPHRASE)
    wrong = KeystoreEntry("x", generations[0].private_key, generations[1].certificate_der)
    with pytest.raises(CertificateError, match="does not belong"):
        certs.export_keystore([generations[0], wrong], passphrase=PASSPHRASE)
    with pytest.raises(CertificateError, match="needs a passphrase"):
        certs.export_keystore(generations, passphrase=b"")


@pytest.mark.parametrize("junk", [b"", b"\x30", b"\x30\x03\x02\x01\x03", b"junk" * 20])
def test_split_refuses_what_is_not_a_pkcs12_file(junk: bytes) -> None:
    with pytest.raises(CertificateError, match="Unexpected PKCS#12 structure"):
        split_pkcs12(junk)


def test_assemble_round_trips_a_single_file(generations: list[KeystoreEntry]) -> None:
    original = certs.export_keystore(generations[:1], passphrase=PASSPHRASE)
    parts = split_pkcs12(original)
    again = assemble_pkcs12(parts.contents, passphrase=PASSPHRASE, like=parts)
    assert again != original  # a new salt
    before, after = pkcs12.load_pkcs12(original, PASSPHRASE), pkcs12.load_pkcs12(again, PASSPHRASE)
    assert after.cert == before.cert
    assert before.key is not None
    assert after.key is not None
    assert certs.private_key_to_der(after.key) == certs.private_key_to_der(before.key)  # type: ignore[arg-type]


# --- the real tools --------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True])
def test_keytool_lists_one_private_key_entry_per_alias(
    generations: list[KeystoreEntry], legacy: bool, tmp_path: Path
) -> None:
    data = certs.export_keystore(generations, passphrase=PASSPHRASE, legacy=legacy)
    listed = keystorefiles.keytool_list(keystorefiles.write(tmp_path, data), PASSPHRASE.decode())
    assert listed == {
        "acmeas2-0": {"type": "PrivateKeyEntry", "chain": "1"},
        "acmeas2-1": {"type": "PrivateKeyEntry", "chain": "1"},
        "acmeas2-2": {"type": "PrivateKeyEntry", "chain": "2"},
    }


@pytest.mark.parametrize(
    ("legacy", "cipher", "mac"),
    [(False, "AES-256-CBC", "MAC: sha256"), (True, "3-KeyTripleDES", "MAC: sha1")],
)
def test_openssl_pairs_each_key_with_its_certificate(
    generations: list[KeystoreEntry], legacy: bool, cipher: str, mac: str, tmp_path: Path
) -> None:
    data = certs.export_keystore(generations, passphrase=PASSPHRASE, legacy=legacy)
    path = keystorefiles.write(tmp_path, data)
    extra = ("-legacy",) if legacy else ()
    info = keystorefiles.openssl_info(path, PASSPHRASE.decode(), *extra)
    assert cipher in info
    assert mac in info
    pairs = keystorefiles.openssl_pairs(info)
    for entry in generations:
        cert = x509.load_der_x509_certificate(entry.certificate_der)
        key_id = " ".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA1()))  # noqa: S303
        assert ("certificate", entry.alias, key_id) in pairs
        assert ("key", entry.alias, key_id) in pairs
    assert len(pairs) == 2 * len(generations)
