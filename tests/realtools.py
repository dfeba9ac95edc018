"""Certificates made at test time by the real `openssl` and `keytool` commands, with the
defaults partners get, so the checker is tested against what partners really send.

Nothing here is committed key material: keys and certificates are written to a test's
temporary directory. The machine's own openssl configuration is used on purpose (OpenSSL 3's
openssl.cnf makes `req -x509` mark the certificate CA:TRUE); tests that rely on such a
default check it and skip, saying why, where the tool behaves otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509

# What partners typically type; the key size is the one the checker recommends.
RSA_KEY = "rsa:3072"
DAYS = "730"
KEYTOOL_STORE_PASSWORD = "changeit"  # keytool's documented example password; a test store

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


@dataclass(frozen=True)
class Made:
    """A certificate made by a tool: its PEM, where it and its key are, and its extensions."""

    pem: bytes
    cert_path: Path
    key_path: Path | None

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem)

    @property
    def basic_constraints(self) -> x509.BasicConstraints | None:
        return _extension(self.certificate, x509.BasicConstraints)

    @property
    def key_usage(self) -> x509.KeyUsage | None:
        return _extension(self.certificate, x509.KeyUsage)

    @property
    def marked_ca(self) -> bool:
        constraints = self.basic_constraints
        return constraints is not None and constraints.ca


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(  # noqa: S603  (fixed tools, arguments built by the tests)
        list(command), capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")


def openssl_binary() -> str:
    """The openssl command, or skip the test."""
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("the openssl command is not installed, so no certificate can be made by it")
    return binary


def keytool_binary() -> str:
    """Java's keytool command, or skip the test."""
    binary = shutil.which("keytool")
    if binary is None:
        pytest.skip("Java's keytool is not installed, so no certificate can be made by it")
    return binary


def openssl_self_signed(
    directory: Path,
    name: str,
    *,
    subject: str = "/CN=PARTNERAS2/O=Partner Corp",
    key: Path | None = None,
    extra: Sequence[str] = (),
) -> Made:
    """`openssl req -x509 -newkey rsa:3072 -nodes ...` as a partner runs it (or with -key KEY)."""
    cert_path = directory / f"{name}.pem"
    key_path = key or directory / f"{name}.key"
    new_key = ["-newkey", RSA_KEY, "-nodes", "-keyout", str(key_path)] if key is None else []
    command = [openssl_binary(), "req", "-x509", *new_key, *(["-key", str(key)] if key else [])]
    command += ["-out", str(cert_path), "-subj", subject, "-days", DAYS, *extra]
    _run(command, "openssl req -x509")
    return Made(cert_path.read_bytes(), cert_path, key_path)


def openssl_issued(
    directory: Path, name: str, issuer: Made, *, subject: str, extra: Sequence[str] = ()
) -> Made:
    """`openssl req -x509 -newkey rsa:3072 -CA ... -CAkey ...`: issued by ISSUER, with defaults."""
    assert issuer.key_path is not None
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    command = [openssl_binary(), "req", "-x509", "-newkey", RSA_KEY, "-nodes"]
    command += ["-keyout", str(key_path), "-out", str(cert_path), "-subj", subject]
    command += ["-days", DAYS, "-CA", str(issuer.cert_path), "-CAkey", str(issuer.key_path)]
    _run([*command, *extra], "openssl req -x509 -CA")
    return Made(cert_path.read_bytes(), cert_path, key_path)


def keytool_certificates(directory: Path, variants: dict[str, Sequence[str]]) -> dict[str, Made]:
    """`keytool -genkeypair -keyalg RSA -keysize 3072` once per variant (its extra options),
    each exported with `keytool -exportcert -rfc` as a partner sends it."""
    binary = keytool_binary()
    store = directory / "partner.p12"
    common = ["-keystore", str(store), "-storetype", "PKCS12"]
    common += ["-storepass", KEYTOOL_STORE_PASSWORD, "-J-Duser.language=en"]
    made: dict[str, Made] = {}
    for index, (variant, extra) in enumerate(variants.items()):
        alias = f"as2-{index}"
        _run(
            [binary, "-genkeypair", "-alias", alias, "-keyalg", "RSA", "-keysize", "3072",
             "-dname", f"CN=PARTNERAS2 {index}, O=Partner Corp", "-validity", DAYS,
             *common, *extra],
            "keytool -genkeypair",
        )  # fmt: skip
        cert_path = directory / f"{alias}.pem"
        _run(
            [binary, "-exportcert", "-rfc", "-alias", alias, "-file", str(cert_path), *common],
            "keytool -exportcert",
        )
        made[variant] = Made(cert_path.read_bytes(), cert_path, None)
    return made
