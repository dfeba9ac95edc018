"""Reading a multi-key PKCS#12 back, for tests: with cryptography, OpenSSL and Java's keytool.

cryptography's `load_pkcs12` reads the first key of a file only. To check every entry with
it, the file's ContentInfos are put together again one key at a time (with every
certificate), each such file read with `load_pkcs12`: its key, the certificate with the
same localKeyID (and its friendly name), the other certificates. The whole file is read
once too, which checks its MAC.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.domain.certs.keystore import Pkcs12Parts, assemble_pkcs12, split_pkcs12
from tests.realtools import keytool_binary, openssl_binary

# The DER of the OID 1.2.840.113549.1.7.6 (PKCS#7 encryptedData), as a ContentInfo begins.
ENCRYPTED_DATA = bytes.fromhex("06092a864886f70d010706")


@dataclass(frozen=True)
class Entry:
    """One key of a keystore with the certificate it was filed with."""

    alias: str
    key: object
    certificate: x509.Certificate
    others: list[x509.Certificate]

    @property
    def key_matches(self) -> bool:
        return _public(self.key.public_key()) == _public(self.certificate.public_key())  # type: ignore[attr-defined]


def _public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def entries(data: bytes, passphrase: bytes) -> list[Entry]:
    """Every key entry of DATA, read with cryptography one key at a time."""
    pkcs12.load_pkcs12(data, passphrase)  # the whole file: its MAC and passphrase
    parts = split_pkcs12(data)
    # Certificate bags are in encryptedData ContentInfos, shrouded key bags in data ones.
    cert_contents = [c for c in parts.contents if ENCRYPTED_DATA in c[:16]]
    key_contents = [c for c in parts.contents if c not in cert_contents]
    found = []
    for content in key_contents:
        loaded = pkcs12.load_pkcs12(_file([*cert_contents, content], passphrase, parts), passphrase)
        assert loaded.key is not None
        assert loaded.cert is not None, "a key without a certificate of the same localKeyID"
        assert loaded.cert.friendly_name is not None
        found.append(
            Entry(
                alias=loaded.cert.friendly_name.decode(),
                key=loaded.key,
                certificate=loaded.cert.certificate,
                others=[c.certificate for c in loaded.additional_certs],
            )
        )
    return found


def _file(contents: list[bytes], passphrase: bytes, parts: Pkcs12Parts) -> bytes:
    return assemble_pkcs12(contents, passphrase=passphrase, like=parts)


def certificates(data: bytes, passphrase: bytes) -> list[x509.Certificate]:
    """Every certificate in DATA (key entries' and chain certificates), in file order."""
    loaded = pkcs12.load_pkcs12(data, passphrase)
    first = [loaded.cert.certificate] if loaded.cert else []
    return first + [c.certificate for c in loaded.additional_certs]


def write(tmp_path: Path, data: bytes, name: str = "keystore.p12") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def keytool_list(path: Path, passphrase: str) -> dict[str, dict[str, str]]:
    """`keytool -list -v -storetype PKCS12`: per alias, its entry type and chain length."""
    command = [keytool_binary(), "-list", "-v", "-storetype", "PKCS12", "-keystore", str(path)]
    command += ["-storepass", passphrase, "-J-Duser.language=en"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("Alias name: "):
            current = found.setdefault(line.removeprefix("Alias name: ").strip(), {})
        elif line.startswith("Entry type: "):
            current["type"] = line.removeprefix("Entry type: ").strip()
        elif line.startswith("Certificate chain length: "):
            current["chain"] = line.removeprefix("Certificate chain length: ").strip()
    return found


def openssl_info(path: Path, passphrase: str, *extra: str) -> str:
    """`openssl pkcs12 -info -nodes`: the bags, their attributes and the algorithms."""
    command = [openssl_binary(), "pkcs12", "-info", "-nodes", "-in", str(path)]
    command += ["-passin", f"pass:{passphrase}", *extra]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def openssl_pairs(info: str) -> list[tuple[str, str, str]]:
    """(bag kind, friendlyName, localKeyID) of each bag that has a localKeyID."""
    pattern = re.compile(
        r"Bag Attributes\n\s+friendlyName: (?P<name>\S+)\n\s+localKeyID: (?P<id>[0-9A-F ]+?)\s*\n"
        r"(?P<next>subject=|Key Attributes)"
    )
    return [
        ("key" if m["next"] == "Key Attributes" else "certificate", m["name"], m["id"])
        for m in pattern.finditer(info)
    ]
