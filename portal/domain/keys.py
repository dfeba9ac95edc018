"""Private keys at rest: AES-256-GCM under a ring of key-encryption keys.

The ring is configured as a list of keys; the last one is the newest and
encrypts, every one of them decrypts, so keys can be rotated without downtime:
add a new key at the end, re-encrypt the stored blobs, then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_BYTES", "KeyRing", "KeyRingError", "generate_key"]

KEY_BYTES: Final = 32
VERSION: Final = 1
KEY_ID_BYTES: Final = 8
NONCE_BYTES: Final = 12  # the 96-bit nonce GCM is designed for
TAG_BYTES: Final = 16
_HEADER_BYTES: Final = 1 + KEY_ID_BYTES
_MIN_BLOB_BYTES: Final = _HEADER_BYTES + NONCE_BYTES + TAG_BYTES
# The key id is derived under its own label so it can never collide with any
# other use of a hash of the key.
_KEY_ID_LABEL: Final = b"portal key-encryption key id v1\x00"
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class KeyRingError(ValueError):
    """A key-encryption key or an encrypted blob is unusable; the message says why."""


def generate_key() -> str:
    """Return a new random key-encryption key as a base64url string."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, position: int) -> bytes:
    compact = text.strip()
    if not _BASE64URL.fullmatch(compact):
        raise KeyRingError(
            f"Key-encryption key #{position} is not base64url text; it must be "
            f"{KEY_BYTES} random bytes encoded as base64url (44 characters)."
        )
    try:
        raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError(f"Key-encryption key #{position} is not valid base64url.") from exc
    if len(raw) != KEY_BYTES:
        raise KeyRingError(
            f"Key-encryption key #{position} decodes to {len(raw)} bytes; it must be "
            f"{KEY_BYTES} random bytes (a 43 or 44 character base64url string)."
        )
    return raw


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_BYTES]


class KeyRing:
    """Encrypts under the newest key-encryption key and decrypts under any configured one."""

    __slots__ = ("_ciphers", "_newest")

    def __init__(self, keys: Sequence[bytes]) -> None:
        """Build a ring from raw 32-byte keys, oldest first."""
        if not keys:
            raise KeyRingError("No key-encryption key is configured.")
        self._ciphers: dict[bytes, AESGCM] = {}
        for position, key in enumerate(keys, start=1):
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"Key-encryption key #{position} must be {KEY_BYTES} bytes.")
            self._ciphers[_key_id(key)] = AESGCM(key)
        self._newest = _key_id(keys[-1])

    @classmethod
    def from_strings(cls, keys: Iterable[str]) -> KeyRing:
        """Build a ring from base64url key strings, oldest first; the last one encrypts."""
        return cls([_decode_key(text, n) for n, text in enumerate(keys, start=1)])

    @property
    def newest_key_id(self) -> str:
        """The hex id of the key that encrypts, safe to log."""
        return self._newest.hex()

    @property
    def key_ids(self) -> list[str]:
        """The hex ids of all configured keys, safe to log."""
        return [key_id.hex() for key_id in self._ciphers]

    def __repr__(self) -> str:
        """Describe the ring without revealing any key."""
        return f"KeyRing({len(self._ciphers)} keys, newest={self.newest_key_id})"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt under the newest key; associated_data binds the blob to its record."""
        header = bytes([VERSION]) + self._newest
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self._newest].encrypt(nonce, plaintext, header + associated_data)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt a blob made by encrypt with the same associated data."""
        key_id = self._key_id_of(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyRingError(
                f"The private key was encrypted with key-encryption key {key_id.hex()}, which is "
                "not configured. Add that key back to the key list to read it."
            )
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        sealed = blob[_HEADER_BYTES + NONCE_BYTES :]
        try:
            # The header is authenticated too, so its version and key id cannot be altered.
            return cipher.decrypt(nonce, sealed, blob[:_HEADER_BYTES] + associated_data)
        except InvalidTag as exc:
            raise KeyRingError(
                "The encrypted private key could not be decrypted: it was altered, or it belongs "
                "to another record."
            ) from exc

    def needs_rotation(self, blob: bytes) -> bool:
        """Whether the blob is encrypted under an older key than the newest."""
        return self._key_id_of(blob) != self._newest

    def reencrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt the blob and encrypt it again under the newest key."""
        return self.encrypt(
            self.decrypt(blob, associated_data=associated_data), associated_data=associated_data
        )

    @staticmethod
    def _key_id_of(blob: bytes) -> bytes:
        if len(blob) < _MIN_BLOB_BYTES:
            raise KeyRingError("The encrypted private key is truncated.")
        if blob[0] != VERSION:
            raise KeyRingError(f"The encrypted private key has unknown format version {blob[0]}.")
        return bytes(blob[1:_HEADER_BYTES])
