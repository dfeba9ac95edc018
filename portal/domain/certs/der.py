"""DER sniffing: recognise structures by their first bytes, without the cryptography library.

Reading a few tags and lengths tells a PKCS#12 file, an encrypted private key or a PKCS#7
bundle apart without opening it, and reads a serial number without cryptography's warnings.
"""

from __future__ import annotations

from typing import Final

_OID_PKCS7_DATA: Final = bytes.fromhex("2a864886f70d010701")
_OID_PKCS7_SIGNED: Final = bytes.fromhex("2a864886f70d010702")
_OID_PREFIX_PKCS5: Final = bytes.fromhex("2a864886f70d0105")
_OID_PREFIX_PKCS12_PBE: Final = bytes.fromhex("2a864886f70d010c01")


def der_header(data: bytes, pos: int) -> tuple[int, int, int | None] | None:
    """Read a BER tag and length at pos: (tag, content start, content end; None if indefinite)."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        return None  # multi-byte tags never occur in the structures we sniff
    if first == 0x80:
        return tag, pos, None  # BER indefinite length: older tools write PFX files this way
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count > 4 or pos + count > len(data):
            return None
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        return None
    return tag, pos, pos + length


def der_serial(der: bytes) -> int | None:
    """Read the serial number straight from the DER, without cryptography's warnings."""
    outer = der_header(der, 0)
    if outer is None or outer[0] != 0x30:
        return None
    tbs = der_header(der, outer[1])
    if tbs is None or tbs[0] != 0x30:
        return None
    item = der_header(der, tbs[1])
    if item is not None and item[0] == 0xA0 and item[2] is not None:
        item = der_header(der, item[2])  # skip the explicit version
    if item is None or item[0] != 0x02 or item[2] is None or item[2] == item[1]:
        return None
    return int.from_bytes(der[item[1] : item[2]], "big", signed=True)


def first_element(der: bytes) -> bytes:
    """The first DER element of der, dropping whatever follows it."""
    header = der_header(der, 0)
    if header is None or header[2] is None:
        return der
    return der[: header[2]]


def is_signed_data(der: bytes) -> bool:
    """Whether der is a PKCS#7 SignedData ContentInfo (the shape of a .p7b/.p7c file)."""
    outer = der_header(der, 0)
    if outer is None or outer[0] != 0x30:
        return False
    oid = der_header(der, outer[1])
    return oid is not None and oid[0] == 0x06 and der[oid[1] : oid[2]] == _OID_PKCS7_SIGNED


def is_pfx(data: bytes) -> bool:
    """PFX ::= SEQUENCE { INTEGER 3, SEQUENCE { OID data|signedData, ... }, ... }."""
    outer = der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    version = der_header(data, outer[1])
    if version is None or version[0] != 0x02 or data[version[1] : version[2]] != b"\x03":
        return False
    auth_safe = der_header(data, version[2] or 0)
    if auth_safe is None or auth_safe[0] != 0x30:
        return False
    oid = der_header(data, auth_safe[1])
    return (
        oid is not None
        and oid[0] == 0x06
        and data[oid[1] : oid[2]] in (_OID_PKCS7_DATA, _OID_PKCS7_SIGNED)
    )


def is_encrypted_pkcs8(data: bytes) -> bool:
    """EncryptedPrivateKeyInfo ::= SEQUENCE { SEQUENCE { OID pbes..., ...}, OCTET STRING }."""
    outer = der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    algorithm = der_header(data, outer[1])
    if algorithm is None or algorithm[0] != 0x30 or algorithm[2] is None:
        return False
    oid = der_header(data, algorithm[1])
    if oid is None or oid[0] != 0x06:
        return False
    value = data[oid[1] : oid[2]]
    encrypted = der_header(data, algorithm[2])
    return (
        value.startswith((_OID_PREFIX_PKCS5, _OID_PREFIX_PKCS12_PBE))
        and encrypted is not None
        and encrypted[0] == 0x04
    )
