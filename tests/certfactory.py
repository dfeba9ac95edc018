"""Build test certificates and keys at test time, so nothing that expires is committed."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeAlias

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

KeyType: TypeAlias = Literal["rsa", "ec", "dsa", "ed25519"]
AnyKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey | ed25519.Ed25519PrivateKey
)

# keyUsage flags for the three AS2 usages, as x509.KeyUsage keyword names.
SIGNING_KU = ("digital_signature", "content_commitment")
ENCRYPTION_KU = ("key_encipherment",)
BOTH_KU = (*SIGNING_KU, *ENCRYPTION_KU)
CA_KU = ("key_cert_sign", "crl_sign")
_ALL_KU = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def rsa_key(bits: int = 2048, slot: int = 0) -> rsa.RSAPrivateKey:
    """An RSA key shared by every test in the run (slot gives distinct keys of a size)."""
    return _rsa_key(bits, slot)


# Cached behind a wrapper so rsa_key() and rsa_key(2048) share one entry (functools.cache
# keys on the call's spelling); generating RSA keys is the slow part of the suite.
@functools.cache
def _rsa_key(bits: int, slot: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
}


def ec_key(curve: str = "secp256r1", slot: int = 0) -> ec.EllipticCurvePrivateKey:
    """An EC key on the named curve, shared by the run."""
    return _ec_key(curve, slot)


@functools.cache
def _ec_key(curve: str, slot: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve]())


def dsa_key(bits: int = 2048) -> dsa.DSAPrivateKey:
    """A DSA key, shared by the run."""
    return _dsa_key(bits)


@functools.cache
def _dsa_key(bits: int) -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=bits)


@functools.cache
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    """An Ed25519 key, shared by the run."""
    return ed25519.Ed25519PrivateKey.generate()


def new_key(key_type: KeyType, key_size: int = 2048, curve: str = "secp256r1") -> AnyKey:
    """The cached key of the given kind."""
    if key_type == "rsa":
        return rsa_key(key_size)
    if key_type == "ec":
        return ec_key(curve)
    if key_type == "dsa":
        return dsa_key(key_size)
    return ed25519_key()


def name(cn: str, organisation: str | None = "Partner Corp") -> x509.Name:
    """A subject name with a common name and, optionally, an organisation."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


def key_usage(flags: Sequence[str]) -> x509.KeyUsage:
    """An x509.KeyUsage with the given flags set."""
    return x509.KeyUsage(**{flag: flag in flags for flag in _ALL_KU})


def make_cert(
    *,
    now: datetime,
    days: int = 365,
    key_type: KeyType = "rsa",
    key_size: int = 2048,
    curve: str = "secp256r1",
    key: AnyKey | None = None,
    usage_flags: Sequence[str] | None = BOTH_KU,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    ca: bool = False,
    serial: int | None = None,
    issuer: tuple[x509.Certificate, AnyKey] | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    subject: x509.Name | None = None,
    extra_extensions: Sequence[x509.ExtensionType] = (),
) -> tuple[x509.Certificate, AnyKey]:
    """Build a certificate, self-signed unless issuer=(cert, key), and return it with its key.

    Validity defaults to one day before now until now + days. usage_flags=None leaves out
    the keyUsage extension; extra_extensions are added non-critical as given (for instance
    an UnrecognizedExtension carrying a corrupt value under a known OID).
    """
    key = key if key is not None else new_key(key_type, key_size, curve)
    subject = subject if subject is not None else name("PARTNERAS2")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if usage_flags is not None:
        builder = builder.add_extension(key_usage(usage_flags), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for extension in extra_extensions:
        builder = builder.add_extension(extension, critical=False)
    signer = issuer[1] if issuer else key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm), key


def make_ca(
    *, now: datetime, cn: str = "Test CA", days: int = 3650
) -> tuple[x509.Certificate, AnyKey]:
    """A self-signed CA certificate on its own key."""
    return make_cert(
        now=now,
        days=days,
        key=rsa_key(2048, slot=1),
        ca=True,
        usage_flags=CA_KU,
        subject=name(cn, "Test CA Org"),
    )


def make_intermediate(
    *,
    now: datetime,
    issuer: tuple[x509.Certificate, AnyKey],
    cn: str = "Partner Issuing CA",
    slot: int = 4,
    **kwargs: Any,
) -> tuple[x509.Certificate, AnyKey]:
    """An intermediate CA (CA:TRUE, keyCertSign, five years) issued by ISSUER; kwargs override."""
    settings: dict[str, Any] = {
        "days": 5 * 365,
        "key": rsa_key(2048, slot=slot),
        "ca": True,
        "usage_flags": CA_KU,
        "subject": name(cn, "Partner Trust Services"),
    }
    settings.update(kwargs)
    return make_cert(now=now, issuer=issuer, **settings)


@dataclass(frozen=True)
class Pki:
    """A CA-issued partner certificate: root, intermediate and leaf, made at test time."""

    root: x509.Certificate
    root_key: AnyKey
    intermediate: x509.Certificate
    intermediate_key: AnyKey
    leaf: x509.Certificate

    @property
    def bundle(self) -> bytes:
        """What a CA hands out: the leaf, then its intermediate, then the root."""
        return pem(self.leaf, self.intermediate, self.root)


def make_pki(*, now: datetime, leaf_cn: str = "GLOBEXAS2", leaf_key: AnyKey | None = None) -> Pki:
    """Root, intermediate and a partner certificate (RSA 3072, 400 days) that raise no finding."""
    root, root_key = make_ca(now=now, cn="Partner Root CA")
    intermediate, intermediate_key = make_intermediate(now=now, issuer=(root, root_key))
    leaf, _ = make_cert(
        now=now,
        days=400,
        key=leaf_key if leaf_key is not None else rsa_key(3072),
        subject=name(leaf_cn, "Globex Corp"),
        issuer=(intermediate, intermediate_key),
    )
    return Pki(root, root_key, intermediate, intermediate_key, leaf)


def pem(*certs: x509.Certificate) -> bytes:
    """Concatenated PEM of the certificates."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    """DER of the certificate."""
    return cert.public_bytes(serialization.Encoding.DER)


def key_bytes(
    key: AnyKey,
    *,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    password: bytes | None = None,
) -> bytes:
    """Serialise a private key in the given encoding and format, encrypted if password is set."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, fmt, encryption)


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = {cn}
O = OpenSSL Test Org
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
"""


def openssl_cert(
    tmp_path: Path,
    *,
    digest: str = "sha1",
    serial: int | None = None,
    days: int = 365,
    cn: str = "OPENSSLAS2",
) -> bytes:
    """Have the openssl command build a certificate cryptography refuses to create; return its PEM.

    SHA-1 and MD5 signatures, and zero or negative serial numbers. The test key is written
    to tmp_path and used there; a private config keeps the system's openssl.cnf (and its
    CA:TRUE default for `req -x509`) out of the way.
    """
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("the openssl command is not installed")
    key_file = tmp_path / "openssl-key.pem"
    key_file.write_bytes(key_bytes(rsa_key(2048)))
    config = tmp_path / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG.format(cn=cn))
    out = tmp_path / f"openssl-{digest}-{serial}.pem"
    command = [binary, "req", "-x509", "-config", str(config), "-key", str(key_file)]
    command += [f"-{digest}", "-days", str(days), "-out", str(out)]
    if serial is not None:
        command += ["-set_serial", str(serial)]
    # OPENSSL_CONF too, so a system-wide policy (such as a raised security level) stays out.
    environment = {**os.environ, "OPENSSL_CONF": str(config)}
    result = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, check=False, env=environment
    )
    if result.returncode != 0:
        pytest.skip(f"openssl cannot build a {digest} certificate here: {result.stderr.strip()}")
    return out.read_bytes()


def corrupt_extension() -> x509.UnrecognizedExtension:
    """A keyUsage extension whose value is not valid DER: the certificate parses, it does not."""
    return x509.UnrecognizedExtension(x509.oid.ExtensionOID.KEY_USAGE, b"\x01\x02")
