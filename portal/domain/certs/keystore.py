"""One PKCS#12 keystore holding several keys, each under its own alias (friendly name).

cryptography (up to 50 at least) writes a PKCS#12 with one key only
(`serialize_key_and_certificates`); `serialize_java_truststore` holds certificates only and
`load_pkcs12` reads back the first key. A PKCS#12 file (RFC 7292) is a MAC over a sequence
of independent ContentInfos (AuthenticatedSafe), each encrypted or shrouded on its own under
the passphrase. So several keys go into one file like this: cryptography writes one file per
key (its key bag and certificate bag share a friendlyName, the alias, and a localKeyID, the
certificate's SHA-1), and one for the chain certificates; their ContentInfos are put into
one AuthenticatedSafe and the MAC is computed afresh (RFC 7292 appendix B.2 key derivation,
the same digest and iteration count cryptography chose). Nothing is decrypted or re-encrypted
here; only the outer DER that cryptography wrote is read, and it is checked to be what is
expected. Java's keytool, OpenSSL and cryptography read the result.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from portal.domain.certs.export import export_pkcs12, export_pkcs12_chain
from portal.domain.certs.model import CertificateError, PrivateKey

_SEQUENCE, _INTEGER, _OCTET_STRING, _OID, _EXPLICIT_0 = 0x30, 0x02, 0x04, 0x06, 0xA0
_PKCS7_DATA: Final = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_VERSION_3: Final = bytes([_INTEGER, 1, 3])
_MAC_DIGESTS: Final = {
    bytes.fromhex("2b0e03021a"): "sha1",  # 1.3.14.3.2.26, legacy files
    bytes.fromhex("608648016503040201"): "sha256",  # 2.16.840.1.101.3.4.2.1
}
_MAC_KEY_ID: Final = 3  # RFC 7292 B.3: the derived key is for the integrity MAC


@dataclass(frozen=True)
class KeystoreEntry:
    """One key with its certificate and chain, to be filed under ALIAS."""

    alias: str
    private_key: PrivateKey
    certificate_der: bytes
    chain_ders: Sequence[bytes] = ()


def export_keystore(
    entries: Sequence[KeystoreEntry], *, passphrase: bytes, legacy: bool = False
) -> bytes:
    """A PKCS#12 file with every entry's key and certificate under its alias, chains once."""
    if not entries:
        raise CertificateError("A keystore needs at least one key.")
    aliases = [entry.alias.lower() for entry in entries]
    if len(set(aliases)) != len(aliases):
        raise CertificateError("Two keystore entries would share an alias.")
    if len(entries) == 1:
        only = entries[0]
        return export_pkcs12(
            private_key=only.private_key,
            certificate_der=only.certificate_der,
            chain_ders=only.chain_ders,
            passphrase=passphrase,
            friendly_name=only.alias.encode(),
            legacy=legacy,
        )
    files = [
        export_pkcs12(
            private_key=entry.private_key,
            certificate_der=entry.certificate_der,
            chain_ders=(),
            passphrase=passphrase,
            friendly_name=entry.alias.encode(),
            legacy=legacy,
        )
        for entry in entries
    ]
    chain = _chain_once(entries)
    if chain:
        files.append(export_pkcs12_chain(chain, passphrase=passphrase, legacy=legacy))
    return combine_pkcs12(files, passphrase=passphrase)


def _chain_once(entries: Sequence[KeystoreEntry]) -> list[bytes]:
    """Every entry's chain certificates, each once, leaving out the entries' own certificates."""
    own = {entry.certificate_der for entry in entries}
    chain: list[bytes] = []
    for entry in entries:
        chain.extend(der for der in entry.chain_ders if der not in own and der not in chain)
    return chain


def combine_pkcs12(files: Sequence[bytes], *, passphrase: bytes) -> bytes:
    """One PKCS#12 file with the contents of FILES (all under PASSPHRASE), MAC computed anew."""
    if not files:
        raise CertificateError("Nothing to put into the PKCS#12 file.")
    parts = [split_pkcs12(data) for data in files]
    contents = [content for part in parts for content in part.contents]
    return assemble_pkcs12(contents, passphrase=passphrase, like=parts[0])


@dataclass(frozen=True)
class Pkcs12Parts:
    """The outer structure of a PKCS#12 file: its ContentInfos and how its MAC was made."""

    contents: list[bytes]  # each ContentInfo of the AuthenticatedSafe, as DER
    mac_algorithm: bytes  # the AlgorithmIdentifier of the MAC's digest, as DER
    mac_oid: bytes  # that digest's OID (content octets)
    salt_length: int
    iterations: bytes  # the INTEGER, as DER


def split_pkcs12(data: bytes) -> Pkcs12Parts:
    """The ContentInfos and MAC parameters of a DER PKCS#12 file written by cryptography."""
    try:
        version, auth_safe, mac_data = _children(_expect(data, _SEQUENCE))
        content_type, explicit = _children(_expect(auth_safe, _SEQUENCE))
        octets = _expect(_expect(explicit, _EXPLICIT_0), _OCTET_STRING)
        contents = _children(_expect(octets, _SEQUENCE))
        digest_info, salt, iterations = _children(_expect(mac_data, _SEQUENCE))
        algorithm, _digest = _children(_expect(digest_info, _SEQUENCE))
        mac_oid = _expect(_children(_expect(algorithm, _SEQUENCE))[0], _OID)
        salt_octets = _expect(salt, _OCTET_STRING)
        _expect(iterations, _INTEGER)
    except ValueError as error:
        raise CertificateError(f"Unexpected PKCS#12 structure: {error}") from None
    if version != _VERSION_3 or _expect(content_type, _OID) != _PKCS7_DATA:
        raise CertificateError("Unexpected PKCS#12 structure: not a version 3 data PFX.")
    if mac_oid not in _MAC_DIGESTS:
        raise CertificateError("Unexpected PKCS#12 structure: unknown MAC digest.")
    return Pkcs12Parts(contents, algorithm, mac_oid, len(salt_octets), iterations)


def assemble_pkcs12(contents: Sequence[bytes], *, passphrase: bytes, like: Pkcs12Parts) -> bytes:
    """A PKCS#12 file of CONTENTS (ContentInfos), MAC made as LIKE's was, with a new salt."""
    digest = _MAC_DIGESTS[like.mac_oid]
    auth_safe = _tlv(_SEQUENCE, b"".join(contents))
    salt = secrets.token_bytes(like.salt_length)
    iterations = int.from_bytes(_expect(like.iterations, _INTEGER), "big")
    key = pkcs12_kdf(passphrase, salt, iterations, _MAC_KEY_ID, digest)
    mac = hmac.new(key, auth_safe, digest).digest()
    mac_data = _tlv(
        _SEQUENCE,
        _tlv(_SEQUENCE, like.mac_algorithm + _tlv(_OCTET_STRING, mac))
        + _tlv(_OCTET_STRING, salt)
        + like.iterations,
    )
    content_info = _tlv(
        _SEQUENCE,
        _tlv(_OID, _PKCS7_DATA) + _tlv(_EXPLICIT_0, _tlv(_OCTET_STRING, auth_safe)),
    )
    return _tlv(_SEQUENCE, _VERSION_3 + content_info + mac_data)


def pkcs12_kdf(passphrase: bytes, salt: bytes, iterations: int, purpose: int, digest: str) -> bytes:
    """RFC 7292 appendix B.2: one digest's length of key material for PURPOSE.

    PASSPHRASE is UTF-8; it enters as a BMPString (UTF-16 big-endian, then two zero bytes),
    as OpenSSL, Java and cryptography read it. One digest's length needs one round of B.2,
    so the step that prepares a second round is left out.
    """
    v = hashlib.new(digest).block_size
    password = passphrase.decode("utf-8").encode("utf-16-be") + b"\x00\x00"
    material = bytes([purpose]) * v + _stretch(salt, v) + _stretch(password, v)
    derived = hashlib.new(digest, material).digest()
    for _ in range(iterations - 1):
        derived = hashlib.new(digest, derived).digest()
    return derived


def _stretch(data: bytes, v: int) -> bytes:
    """DATA repeated to the next multiple of V bytes (empty stays empty)."""
    if not data:
        return b""
    size = v * -(-len(data) // v)
    return (data * (size // len(data) + 1))[:size]


# --- DER: definite lengths only, as cryptography writes it --------------------------------


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, content, end) of the element starting at POS."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if not 1 <= size <= 4 or pos + size > len(data):
            raise ValueError("unsupported length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise ValueError("truncated")
    return tag, data[pos : pos + length], pos + length


def _children(content: bytes) -> list[bytes]:
    """The elements inside CONTENT, each as its whole DER (tag, length, content)."""
    found, pos = [], 0
    while pos < len(content):
        _tag, _value, end = _read(content, pos)
        found.append(content[pos:end])
        pos = end
    return found


def _expect(element: bytes, tag: int) -> bytes:
    """The content of ELEMENT, which must be one whole element with TAG."""
    found, content, end = _read(element, 0)
    if found != tag or end != len(element):
        raise ValueError(f"expected tag {tag:#04x}, found {found:#04x}")
    return content


def _tlv(tag: int, content: bytes) -> bytes:
    """DER of one element."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content
