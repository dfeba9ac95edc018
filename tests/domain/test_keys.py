"""Private keys at rest: the key ring."""

from __future__ import annotations

import base64

import pytest

from portal.domain.keys import KEY_BYTES, KeyRing, KeyRingError, generate_key
from tests import certfactory

AD = b"certificate:AB:CD:EF"
# A real PEM private key, made at test time (no key material is committed).
SECRET = certfactory.key_bytes(certfactory.rsa_key(2048))


@pytest.fixture
def old() -> str:
    """An older key-encryption key."""
    return generate_key()


@pytest.fixture
def new() -> str:
    """The newest key-encryption key."""
    return generate_key()


def test_generate_key_is_32_random_bytes() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(base64.urlsafe_b64decode(first)) == KEY_BYTES


def test_round_trip(old: str) -> None:
    ring = KeyRing.from_strings([old])
    blob = ring.encrypt(SECRET, associated_data=AD)
    assert ring.decrypt(blob, associated_data=AD) == SECRET


def test_ciphertext_hides_the_plaintext_and_nonces_differ(old: str) -> None:
    ring = KeyRing.from_strings([old])
    first = ring.encrypt(SECRET, associated_data=AD)
    second = ring.encrypt(SECRET, associated_data=AD)
    assert first != second
    for blob in (first, second):
        assert SECRET not in blob
        assert b"PRIVATE KEY" not in blob
    assert first[9:21] != second[9:21]  # the nonces


def test_blob_layout(old: str) -> None:
    ring = KeyRing.from_strings([old])
    blob = ring.encrypt(b"x", associated_data=AD)
    assert blob[0] == 1
    assert blob[1:9].hex() == ring.newest_key_id
    assert len(blob) == 1 + 8 + 12 + 1 + 16


def test_rotation(old: str, new: str) -> None:
    before = KeyRing.from_strings([old])
    after = KeyRing.from_strings([old, new])
    blob = before.encrypt(SECRET, associated_data=AD)
    assert after.decrypt(blob, associated_data=AD) == SECRET
    assert after.needs_rotation(blob)
    rotated = after.reencrypt(blob, associated_data=AD)
    assert not after.needs_rotation(rotated)
    assert rotated[1:9].hex() == after.newest_key_id != before.newest_key_id
    assert KeyRing.from_strings([new]).decrypt(rotated, associated_data=AD) == SECRET
    assert not before.needs_rotation(blob)


def test_unknown_key_names_the_missing_key(old: str, new: str) -> None:
    blob = KeyRing.from_strings([old]).encrypt(SECRET, associated_data=AD)
    ring = KeyRing.from_strings([new])
    with pytest.raises(KeyRingError, match="not configured") as caught:
        ring.decrypt(blob, associated_data=AD)
    assert blob[1:9].hex() in str(caught.value)


def test_wrong_associated_data(old: str) -> None:
    ring = KeyRing.from_strings([old])
    blob = ring.encrypt(SECRET, associated_data=AD)
    with pytest.raises(KeyRingError, match="another record"):
        ring.decrypt(blob, associated_data=b"certificate:00:11")


@pytest.mark.parametrize("position", [9, 15, 21, 30, -1])
def test_tampering_is_detected(old: str, position: int) -> None:
    ring = KeyRing.from_strings([old])
    blob = bytearray(ring.encrypt(SECRET, associated_data=AD))
    blob[position] ^= 0x01
    with pytest.raises(KeyRingError, match="altered"):
        ring.decrypt(bytes(blob), associated_data=AD)


def test_tampered_header(old: str) -> None:
    ring = KeyRing.from_strings([old])
    blob = ring.encrypt(SECRET, associated_data=AD)
    with pytest.raises(KeyRingError, match="version 2"):
        ring.decrypt(b"\x02" + blob[1:], associated_data=AD)
    with pytest.raises(KeyRingError, match="not configured"):
        ring.decrypt(blob[:1] + bytes(8) + blob[9:], associated_data=AD)
    with pytest.raises(KeyRingError, match="truncated"):
        ring.decrypt(blob[:30], associated_data=AD)
    with pytest.raises(KeyRingError, match="truncated"):
        ring.needs_rotation(b"")


def test_unpadded_keys_are_accepted(old: str) -> None:
    blob = KeyRing.from_strings([old]).encrypt(SECRET, associated_data=AD)
    assert KeyRing.from_strings([old.rstrip("=")]).decrypt(blob, associated_data=AD) == SECRET


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "No key-encryption key"),
        (["not base64!"], "#1 is not base64url"),
        ([base64.urlsafe_b64encode(b"short").decode()], "#1 decodes to 5 bytes"),
        (["A"], "#1 is not valid base64url"),
        ([generate_key(), ""], "#2 is not base64url"),
    ],
)
def test_invalid_keys(keys: list[str], message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.from_strings(keys)


def test_raw_keys_must_be_32_bytes() -> None:
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing([b"x" * 16])


def test_repr_reveals_no_key(old: str, new: str) -> None:
    ring = KeyRing.from_strings([old, new])
    text = repr(ring)
    assert old not in text
    assert new not in text
    assert ring.newest_key_id in text
    assert ring.key_ids[-1] == ring.newest_key_id
    assert len(ring.key_ids) == 2
