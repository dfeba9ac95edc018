"""Certificates for AS2: read and judge uploads, generate, import and export.

Plain domain code: no Flask, no database and no clock. Callers pass the time in,
so every judgement is reproducible and testable.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, ParamSpec, TypeAlias, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ALLOWED_RSA_SIZES",
    "MAX_INPUT_BYTES",
    "CertificateError",
    "CertificateInfo",
    "Code",
    "Finding",
    "Generated",
    "KeyedCertificate",
    "PendingKey",
    "PrivateKey",
    "Report",
    "Severity",
    "Usage",
    "certificate_info",
    "clean_text",
    "create_csr",
    "export_der",
    "export_p7c",
    "export_pem",
    "export_pkcs12",
    "generate_identity_certificate",
    "inspect",
    "load_pem_bundle",
    "load_pkcs12",
    "match_signed_bundle",
    "match_signed_certificate",
    "normalise_fingerprint",
    "private_key_from_der",
    "private_key_to_der",
]

log = logging.getLogger(__name__)

MAX_INPUT_BYTES: Final = 64 * 1024
ALLOWED_RSA_SIZES: Final = (2048, 3072, 4096)
RECOMMENDED_RSA_BITS: Final = 3072
MIN_RSA_BITS: Final = 2048
EXPIRY_WARNING: Final = timedelta(days=30)
# Five calendar years including up to two leap days.
MAX_VALIDITY: Final = timedelta(days=5 * 365 + 2)
MAX_GENERATED_DAYS: Final = 3650
# Generated certificates start a little in the past so that a partner whose
# clock runs slightly behind does not see a "not yet valid" certificate.
BACKDATE: Final = timedelta(hours=1)
_PKCS12_KDF_ROUNDS: Final = 100_000

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Everything the cryptography library raises on malformed input. Its warnings (odd
# serials, BER instead of DER) are included because under `-W error` they are raised.
_CRYPTO_ERRORS: Final = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UserWarning,
    OverflowError,
)


class CertificateError(ValueError):
    """A certificate operation was refused; the message can be shown to a person."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _refusing(message: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Let only CertificateError out: a cryptography error becomes one with message."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except CertificateError:
                raise
            except _CRYPTO_ERRORS as exc:
                raise CertificateError(message) from exc

        return wrapper

    return decorate


class Usage(enum.StrEnum):
    """What a certificate is used for in AS2."""

    SIGNING = "signing"
    ENCRYPTION = "encryption"
    BOTH = "both"


class Severity(enum.StrEnum):
    """How serious a finding is: errors block, warnings need a tick, infos inform."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(enum.StrEnum):
    """Stable finding codes; templates, the API and partners' scripts rely on them."""

    # errors
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    PRIVATE_KEY = "private_key"
    NO_CERTIFICATE = "no_certificate"
    CERTIFICATE_REQUEST = "certificate_request"
    MULTIPLE_END_ENTITIES = "multiple_end_entities"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED_AT_ACTIVATION = "expired_at_activation"
    RSA_KEY_TOO_SMALL = "rsa_key_too_small"
    EC_CURVE_NOT_ALLOWED = "ec_curve_not_allowed"
    DSA_KEY = "dsa_key"
    UNSUPPORTED_KEY_TYPE = "unsupported_key_type"
    WEAK_SIGNATURE_HASH = "weak_signature_hash"
    CA_CERTIFICATE = "ca_certificate"
    KEY_USAGE_INCOMPATIBLE = "key_usage_incompatible"
    NON_POSITIVE_SERIAL = "non_positive_serial"
    MALFORMED_EXTENSION = "malformed_extension"
    MALFORMED_CERTIFICATE = "malformed_certificate"
    BAD_SIGNATURE = "bad_signature"
    INTERNAL_ERROR = "internal_error"
    # warnings
    EXPIRES_SOON = "expires_soon"
    RSA_2048 = "rsa_2048"
    VALIDITY_TOO_LONG = "validity_too_long"
    SAME_AS_CURRENT = "same_as_current"
    UNUSUAL_EXTENDED_KEY_USAGE = "unusual_extended_key_usage"
    TRAILING_DATA = "trailing_data"
    CHAIN_EXPIRED = "chain_expired"
    SELF_SIGNED_CA_FLAG = "self_signed_ca_flag"
    # infos
    SELF_SIGNED = "self_signed"
    SUBJECT = "subject"
    ISSUER = "issuer"
    SERIAL = "serial"
    VALIDITY = "validity"
    KEY = "key"
    SIGNATURE_ALGORITHM = "signature_algorithm"
    KEY_USAGE = "key_usage"
    EXTENDED_KEY_USAGE = "extended_key_usage"
    FINGERPRINT_SHA256 = "fingerprint_sha256"
    FINGERPRINT_SHA1 = "fingerprint_sha1"
    CHAIN = "chain"


@dataclass(frozen=True)
class Finding:
    """One result of inspecting a certificate, worded for the partner."""

    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return the finding as a JSON-safe mapping."""
        return {"code": str(self.code), "severity": str(self.severity), "message": self.message}


def _error(code: Code, message: str) -> Finding:
    return Finding(code, Severity.ERROR, message)


def _warning(code: Code, message: str) -> Finding:
    return Finding(code, Severity.WARNING, message)


def _info(code: Code, message: str) -> Finding:
    return Finding(code, Severity.INFO, message)


# ---------------------------------------------------------------------------
# Text hygiene and formatting
# ---------------------------------------------------------------------------

# Control, format (bidi overrides, zero-width) and line/paragraph separators can
# hide or reorder text shown to people, so they never reach a page or an email.
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_MAX_SHOWN_CHARS: Final = 200


def clean_text(text: str) -> str:
    """Remove control and invisible formatting characters from text taken from a certificate."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)


def _shorten(text: str) -> str:
    # Subjects can be long; messages stay readable on a phone.
    if len(text) <= _MAX_SHOWN_CHARS:
        return text
    return text[: _MAX_SHOWN_CHARS - 3] + "..."


def _fmt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _colon_hex(digest: bytes) -> str:
    return digest.hex(":").upper()


def _require_aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def normalise_fingerprint(value: str) -> str:
    """Return a fingerprint as colon-separated uppercase hex, whatever its input spelling."""
    # Accept what people paste from `openssl x509 -fingerprint` ("SHA256 Fingerprint=AB:..").
    text = value.rsplit("=", 1)[-1]
    compact = re.sub(r"[\s:]", "", text)
    if not compact or len(compact) % 2 or re.fullmatch(r"[0-9A-Fa-f]+", compact) is None:
        raise CertificateError(f"{_shorten(clean_text(value))!r} is not a fingerprint in hex")
    return _colon_hex(bytes.fromhex(compact))


# ---------------------------------------------------------------------------
# Certificate description
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """What the portal stores and shows about one certificate."""

    der: bytes
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int | None
    curve: str | None
    signature_hash: str | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    is_ca: bool
    self_signed: bool
    fingerprint_sha256: str
    fingerprint_sha1: str

    def pem(self) -> str:
        """Return the certificate as PEM text."""
        body = base64.b64encode(self.der).decode("ascii")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"

    def to_dict(self) -> dict[str, Any]:
        """Return the certificate's description as a JSON-safe mapping."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key_type": self.key_type,
            "key_size": self.key_size,
            "curve": self.curve,
            "signature_hash": self.signature_hash,
            "key_usage": list(self.key_usage),
            "extended_key_usage": list(self.extended_key_usage),
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_sha1": self.fingerprint_sha1,
            "pem": self.pem(),
        }


@dataclass(frozen=True)
class _Extensions:
    key_usage: tuple[str, ...] | None  # None: no keyUsage extension, so any use is allowed
    extended_key_usage: tuple[str, ...]
    is_ca: bool


_NO_EXTENSIONS: Final = _Extensions(None, (), False)


@dataclass(frozen=True)
class _Parsed:
    """A loaded certificate with its description and what went wrong reading it."""

    cert: x509.Certificate
    info: CertificateInfo
    problems: tuple[Finding, ...]
    subject_name: x509.Name | None
    issuer_name: x509.Name | None
    key_usage_present: bool
    serial_value: int
    signature_algorithm: str

    def issued(self, other: _Parsed) -> bool:
        """Whether this certificate's subject is the issuer of another certificate."""
        return (
            other is not self
            and self.subject_name is not None
            and self.subject_name == other.issuer_name
        )


# RFC 5280 names, the spelling AS2 products and openssl documentation use.
_KEY_USAGE_BITS: Final = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_KEY_AGREEMENT_BITS: Final = (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
_KEY_USAGE_LABELS: Final = {
    "digitalSignature": "Digital Signature",
    "nonRepudiation": "Non-Repudiation",
    "keyEncipherment": "Key Encipherment",
    "dataEncipherment": "Data Encipherment",
    "keyAgreement": "Key Agreement",
    "keyCertSign": "Certificate Sign",
    "cRLSign": "CRL Sign",
    "encipherOnly": "Encipher Only",
    "decipherOnly": "Decipher Only",
}
_EKU_NAMES: Final = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
# AS2 signs and encrypts S/MIME messages. emailProtection is the S/MIME purpose;
# serverAuth/clientAuth are common on certificates shared with the HTTPS side of
# AS2 and are tolerated by AS2 products. Anything else (code signing, time
# stamping, OCSP, vendor OIDs) means the partner most likely picked the wrong
# certificate, and strict S/MIME stacks refuse such certificates.
_USUAL_EKUS: Final = frozenset(
    {"emailProtection", "clientAuth", "serverAuth", "anyExtendedKeyUsage"}
)
_NIST_CURVES: Final = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_HASH_LABELS: Final = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
# Signature algorithms cryptography cannot name a hash for but that are known broken.
_WEAK_SIGNATURE_OIDS: Final = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
}
_WEAK_HASHES: Final = frozenset({"md2", "md4", "md5", "sha1"})


def _read_name(get: Callable[[], x509.Name]) -> tuple[x509.Name | None, str]:
    try:
        name = get()
        return name, clean_text(name.rfc4514_string())
    except _CRYPTO_ERRORS:
        return None, "(unreadable name)"


def _key_usage_names(usage: x509.KeyUsage) -> tuple[str, ...]:
    names = [label for attr, label in _KEY_USAGE_BITS if getattr(usage, attr)]
    if usage.key_agreement:  # encipher_only/decipher_only raise unless keyAgreement is set
        names += [label for attr, label in _KEY_AGREEMENT_BITS if getattr(usage, attr)]
    return tuple(names)


def _read_extensions(cert: x509.Certificate) -> _Extensions | None:
    """Read the extensions we judge; None when they are not encoded correctly."""
    try:
        extensions = cert.extensions
        key_usage: tuple[str, ...] | None = None
        eku: tuple[str, ...] = ()
        is_ca = False
        for extension in extensions:
            value = extension.value
            if isinstance(value, x509.KeyUsage):
                key_usage = _key_usage_names(value)
            elif isinstance(value, x509.ExtendedKeyUsage):
                eku = tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in value)
            elif isinstance(value, x509.BasicConstraints):
                is_ca = value.ca
        return _Extensions(key_usage, eku, is_ca)
    except _CRYPTO_ERRORS:
        return None


_KEY_CLASSES: Final[tuple[tuple[type[object], str], ...]] = (
    (rsa.RSAPublicKey, "RSA"),
    (ec.EllipticCurvePublicKey, "EC"),
    (dsa.DSAPublicKey, "DSA"),
    (ed25519.Ed25519PublicKey, "Ed25519"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PublicKey, "X448"),
)


def _key_facts(key: CertificatePublicKeyTypes | None) -> tuple[str, int | None, str | None]:
    """Return (key type, size in bits, curve) for display and judgement."""
    if key is None:
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return ("RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"), key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, _NIST_CURVES.get(key.curve.name, key.curve.name)
    for cls, label in _KEY_CLASSES:
        if isinstance(key, cls):
            return label, None, None
    return type(key).__name__.removesuffix("PublicKey"), None, None


def _read_public_key(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    try:
        return cert.public_key()
    except _CRYPTO_ERRORS:
        return None


def _read_signature(cert: x509.Certificate) -> tuple[str | None, str]:
    """Return (hash name or None, signature algorithm name)."""
    try:
        oid = cert.signature_algorithm_oid
        name = oid._name if oid._name != "Unknown OID" else oid.dotted_string
    except _CRYPTO_ERRORS:
        return None, "unknown"
    try:
        algorithm = cert.signature_hash_algorithm
    except _CRYPTO_ERRORS:
        return _WEAK_SIGNATURE_OIDS.get(oid.dotted_string), name
    return (algorithm.name if algorithm is not None else None), name


def _der_header(data: bytes, pos: int) -> tuple[int, int, int | None] | None:
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


def _der_serial(der: bytes) -> int | None:
    """Read the serial number straight from the DER, without cryptography's warnings."""
    outer = _der_header(der, 0)
    if outer is None or outer[0] != 0x30:
        return None
    tbs = _der_header(der, outer[1])
    if tbs is None or tbs[0] != 0x30:
        return None
    item = _der_header(der, tbs[1])
    if item is not None and item[0] == 0xA0 and item[2] is not None:
        item = _der_header(der, item[2])  # skip the explicit version
    if item is None or item[0] != 0x02 or item[2] is None or item[2] == item[1]:
        return None
    return int.from_bytes(der[item[1] : item[2]], "big", signed=True)


def _serial_text(value: int) -> str:
    return f"{value:X}" if value >= 0 else f"-{-value:X}"


def _describe(cert: x509.Certificate, der: bytes) -> _Parsed:
    """Describe a loaded certificate, noting the parts that could not be read."""
    problems: list[Finding] = []
    subject_name, subject = _read_name(lambda: cert.subject)
    issuer_name, issuer = _read_name(lambda: cert.issuer)
    if subject_name is None or issuer_name is None:
        problems.append(
            _error(
                Code.MALFORMED_CERTIFICATE,
                "The subject or issuer name of the certificate is not encoded correctly, so AS2 "
                "software will reject it. Please issue a new certificate.",
            )
        )
    extensions = _read_extensions(cert)
    if extensions is None:
        problems.append(
            _error(
                Code.MALFORMED_EXTENSION,
                "Part of the certificate (its extensions) is not encoded correctly, so AS2 "
                "software will reject it. Please issue a new certificate.",
            )
        )
        extensions = _NO_EXTENSIONS
    key_type, key_size, curve = _key_facts(_read_public_key(cert))
    hash_name, signature_algorithm = _read_signature(cert)
    serial = _der_serial(der)
    serial_value = serial if serial is not None else cert.serial_number
    info = CertificateInfo(
        der=der,
        subject=subject,
        issuer=issuer,
        serial=_serial_text(serial_value),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_hash=hash_name,
        key_usage=extensions.key_usage or (),
        extended_key_usage=extensions.extended_key_usage,
        is_ca=extensions.is_ca,
        self_signed=subject_name is not None and subject_name == issuer_name,
        fingerprint_sha256=_colon_hex(hashlib.sha256(der).digest()),
        fingerprint_sha1=_colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
    )
    return _Parsed(
        cert=cert,
        info=info,
        problems=tuple(problems),
        subject_name=subject_name,
        issuer_name=issuer_name,
        key_usage_present=extensions.key_usage is not None,
        serial_value=serial_value,
        signature_algorithm=signature_algorithm,
    )


def _load_der_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate; raises the cryptography library's errors."""
    # cryptography warns about zero or negative serials (reported here as a finding). The
    # warning is left alone: silencing it means swapping the process-wide warning filters,
    # which is not thread-safe in a threaded web server.
    return x509.load_der_x509_certificate(der)


def certificate_info(der: bytes) -> CertificateInfo:
    """Describe one DER certificate, raising CertificateError if it cannot be read."""
    try:
        return _describe(_load_der_certificate(bytes(der)), bytes(der)).info
    except _CRYPTO_ERRORS as exc:
        raise CertificateError("The certificate could not be read.") from exc


# ---------------------------------------------------------------------------
# Finding what is in an upload
# ---------------------------------------------------------------------------

_OID_PKCS7_DATA: Final = bytes.fromhex("2a864886f70d010701")
_OID_PKCS7_SIGNED: Final = bytes.fromhex("2a864886f70d010702")
_OID_PREFIX_PKCS5: Final = bytes.fromhex("2a864886f70d0105")
_OID_PREFIX_PKCS12_PBE: Final = bytes.fromhex("2a864886f70d010c01")

_PEM_BEGIN: Final = re.compile(rb"-----BEGIN ([A-Z0-9#][A-Z0-9# ]{0,63})-----")
# Any PEM or SSH private key flavour, including "---- BEGIN SSH2 ENCRYPTED
# PRIVATE KEY ----" and PuTTY's .ppk format. Case-sensitive on purpose: armour
# lines are upper case, while prose around a pasted certificate may well say
# "private key".
_PRIVATE_KEY_TEXT: Final = re.compile(rb"BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY|PuTTY-User-Key-File-")
_BASE64_ONLY: Final = re.compile(rb"[A-Za-z0-9+/=\s]+")
_MAX_PEM_BLOCKS: Final = 100
_CERT_LABELS: Final = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"})
_PKCS7_LABELS: Final = frozenset({"PKCS7", "PKCS #7 SIGNED DATA", "CMS", "CERTIFICATE CHAIN"})
_CSR_LABELS: Final = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})

_MSG_DAMAGED: Final = (
    "Certificate number {n} in the file could not be read: the text is damaged, perhaps "
    "changed or cut while copying. Please export the certificate again and resend it."
)
_MSG_TRUNCATED: Final = (
    "The certificate text is cut off: the line '-----END {label}-----' is missing. Please copy "
    "the whole text, including the BEGIN and END lines."
)


@dataclass
class _Extraction:
    """What was found in an upload, before judging it."""

    certificates: list[tuple[x509.Certificate, bytes]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    private_key: bool = False
    pkcs12: bool = False
    recognised: bool = False
    request: bool = False

    def add(self, cert: x509.Certificate, der: bytes) -> None:
        """Add a certificate unless the same one is already there."""
        if all(der != known for _, known in self.certificates):
            self.certificates.append((cert, der))

    def add_der(self, der: bytes, number: int) -> bool:
        """Load and add one DER certificate; record a finding if it is damaged."""
        try:
            self.add(_load_der_certificate(der), der)
        except _CRYPTO_ERRORS:
            serial = _der_serial(der)
            # cryptography announces it will refuse such serials: keep the specific finding.
            if serial is not None and serial <= 0:
                self.findings.append(_non_positive_serial_finding())
            else:
                self.findings.append(_error(Code.UNREADABLE, _MSG_DAMAGED.format(n=number)))
            return False
        return True


def _non_positive_serial_finding() -> Finding:
    return _error(
        Code.NON_POSITIVE_SERIAL,
        "The certificate's serial number is zero or negative. The standard forbids this and many "
        "systems reject such certificates. Please issue a new certificate.",
    )


def _pem_blocks(text: bytes) -> list[tuple[str, bytes | None]]:
    """Return (label, body) for each PEM block; body None when its END line is missing."""
    blocks: list[tuple[str, bytes | None]] = []
    pos = 0
    while len(blocks) < _MAX_PEM_BLOCKS:
        begin = _PEM_BEGIN.search(text, pos)
        if begin is None:
            break
        raw_label = begin.group(1)
        end_marker = b"-----END " + raw_label + b"-----"
        end = text.find(end_marker, begin.end())
        body = text[begin.end() : end] if end >= 0 else b""
        label = raw_label.decode("ascii")
        # A block that runs into the next BEGIN line was cut off.
        if end < 0 or b"-----BEGIN " in body:
            blocks.append((label, None))
            pos = begin.end()
            continue
        blocks.append((label, body))
        pos = end + len(end_marker)
    return blocks


def _decode_pem_body(body: bytes) -> bytes | None:
    # Drop RFC 1421 header lines ("Name: value") and all whitespace, then decode strictly.
    lines = [line for line in body.splitlines() if b":" not in line]
    compact = b"".join(b"".join(lines).split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _first_element(der: bytes) -> bytes:
    """The first DER element of der, dropping whatever follows it."""
    header = _der_header(der, 0)
    if header is None or header[2] is None:
        return der
    return der[: header[2]]


def _is_signed_data(der: bytes) -> bool:
    outer = _der_header(der, 0)
    if outer is None or outer[0] != 0x30:
        return False
    oid = _der_header(der, outer[1])
    return oid is not None and oid[0] == 0x06 and der[oid[1] : oid[2]] == _OID_PKCS7_SIGNED


def _add_pkcs7(der: bytes, found: _Extraction, number: int) -> None:
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(der)
    except _CRYPTO_ERRORS:
        if _is_signed_data(der):
            found.recognised = True  # a PKCS#7 file, just without certificates
        else:
            found.findings.append(_error(Code.UNREADABLE, _MSG_DAMAGED.format(n=number)))
        return
    found.recognised = True
    for cert in certificates:
        found.add(cert, cert.public_bytes(serialization.Encoding.DER))


def _handle_pem_block(label: str, body: bytes | None, found: _Extraction, number: int) -> None:
    interesting = label in _CERT_LABELS or label in _PKCS7_LABELS
    if body is None:
        if interesting:
            found.findings.append(_error(Code.UNREADABLE, _MSG_TRUNCATED.format(label=label)))
        return
    found.recognised = True
    if label in _CSR_LABELS:
        found.request = True
    if not interesting:
        return
    der = _decode_pem_body(body)
    if der is None:
        found.findings.append(_error(Code.UNREADABLE, _MSG_DAMAGED.format(n=number)))
    elif label in _PKCS7_LABELS:
        _add_pkcs7(der, found, number)
    else:
        # A TRUSTED CERTIFICATE carries OpenSSL trust settings after the certificate.
        found.add_der(_first_element(der) if label == "TRUSTED CERTIFICATE" else der, number)


def _extract_pem(text: bytes, found: _Extraction) -> None:
    number = 0
    for label, body in _pem_blocks(text):
        if label in _CERT_LABELS or label in _PKCS7_LABELS:
            number += 1
        _handle_pem_block(label, body, found, number)


def _is_pfx(data: bytes) -> bool:
    """PFX ::= SEQUENCE { INTEGER 3, SEQUENCE { OID data|signedData, ... }, ... }."""
    outer = _der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    version = _der_header(data, outer[1])
    if version is None or version[0] != 0x02 or data[version[1] : version[2]] != b"\x03":
        return False
    auth_safe = _der_header(data, version[2] or 0)
    if auth_safe is None or auth_safe[0] != 0x30:
        return False
    oid = _der_header(data, auth_safe[1])
    return (
        oid is not None
        and oid[0] == 0x06
        and data[oid[1] : oid[2]] in (_OID_PKCS7_DATA, _OID_PKCS7_SIGNED)
    )


def _is_encrypted_pkcs8(data: bytes) -> bool:
    """EncryptedPrivateKeyInfo ::= SEQUENCE { SEQUENCE { OID pbes..., ...}, OCTET STRING }."""
    outer = _der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    algorithm = _der_header(data, outer[1])
    if algorithm is None or algorithm[0] != 0x30 or algorithm[2] is None:
        return False
    oid = _der_header(data, algorithm[1])
    if oid is None or oid[0] != 0x06:
        return False
    value = data[oid[1] : oid[2]]
    encrypted = _der_header(data, algorithm[2])
    return (
        value.startswith((_OID_PREFIX_PKCS5, _OID_PREFIX_PKCS12_PBE))
        and encrypted is not None
        and encrypted[0] == 0x04
    )


def _is_der_private_key(data: bytes) -> bool:
    if _is_encrypted_pkcs8(data):
        return True
    try:
        serialization.load_der_private_key(data, None)
    except TypeError:
        return True  # "password was not given but private key is encrypted"
    except UnsupportedAlgorithm:
        return True  # a key, only of a kind or protection we cannot load
    except _CRYPTO_ERRORS:
        return False
    return True


def _extract_der(data: bytes, found: _Extraction) -> None:
    if _is_pfx(data):
        # Recognised by structure alone and never opened: a PFX dictates its own key
        # derivation iteration counts, so opening one lets an anonymous upload burn
        # unbounded CPU. PFX files exist to carry private keys; that is all we need.
        found.recognised = found.private_key = found.pkcs12 = True
        return
    element = _first_element(data)
    if _try_der_certificate(element, found):
        _note_trailing(data[len(element) :], found)
    elif not found.recognised and any(_is_der_private_key(d) for d in {data, element}):
        found.recognised = found.private_key = True


def _note_trailing(trailing: bytes, found: _Extraction) -> None:
    # Padding with NULs or line breaks is common and harmless; other bytes are worth a word.
    if trailing.strip(b"\x00\r\n\t "):
        found.findings.append(
            _warning(
                Code.TRAILING_DATA,
                f"The file has {len(trailing)} extra bytes after the certificate; they were "
                "ignored. If the certificate shown is not the one you meant, please export it "
                "again.",
            )
        )


def _try_der_certificate(der: bytes, found: _Extraction) -> bool:
    """Read der as a certificate, else as a PKCS#7 bundle or a CSR; whether certificates came."""
    try:
        found.add(_load_der_certificate(der), der)
    except _CRYPTO_ERRORS:
        if _is_signed_data(der):
            _add_pkcs7(der, found, 1)
            return bool(found.certificates)
        found.request = found.recognised = _is_der_csr(der)
        return False
    found.recognised = True
    return True


def _is_der_csr(der: bytes) -> bool:
    try:
        x509.load_der_x509_csr(der)
    except _CRYPTO_ERRORS:
        return False
    return True


def _as_text(data: bytes) -> bytes:
    # Windows tools sometimes save pasted PEM as UTF-16; make it ASCII again.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("ascii", "ignore")
        except UnicodeDecodeError:
            return data
    return data


def _extract(data: bytes) -> _Extraction:
    """Find certificates, private keys and requests in an upload of any supported format."""
    found = _Extraction()
    text = _as_text(data)
    # Cheap substring tests first: the regex alone costs more than the rest of parsing a PEM.
    if (b"PRIVATE KEY" in text or b"PuTTY" in text) and _PRIVATE_KEY_TEXT.search(text):
        found.private_key = found.recognised = True
    if b"-----BEGIN " in text:
        _extract_pem(text, found)
    elif data[:1] == b"\x30":
        _extract_der(data, found)
    elif text.strip() and _BASE64_ONLY.fullmatch(text.strip()):
        # A PEM body pasted without its BEGIN/END lines.
        der = _decode_pem_body(text)
        if der is not None:
            _extract_der(der, found)
    return found


# ---------------------------------------------------------------------------
# Judging
# ---------------------------------------------------------------------------


@dataclass
class Report:
    """The outcome of inspecting an upload: findings and what was found."""

    findings: list[Finding] = field(default_factory=list)
    certificate: CertificateInfo | None = None
    chain: list[CertificateInfo] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        """Whether nothing blocks using the certificate (warnings may remain)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        """Findings that block the certificate."""
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """Findings a person must acknowledge."""
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def infos(self) -> list[Finding]:
        """Details to read back, such as fingerprints."""
        return [f for f in self.findings if f.severity is Severity.INFO]

    @property
    def codes(self) -> list[str]:
        """The codes of all findings, in order."""
        return [str(f.code) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-safe mapping."""
        return {
            "acceptable": self.acceptable,
            "findings": [f.to_dict() for f in self.findings],
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "chain": [c.to_dict() for c in self.chain],
        }


@dataclass(frozen=True)
class _Context:
    usage: Usage
    now: datetime
    activate_at: datetime | None
    current_sha256: str | None

    @property
    def reference(self) -> datetime:
        """The moment the certificate must be good at: activation if known, else now."""
        return self.activate_at if self.activate_at is not None else self.now

    @property
    def reference_label(self) -> str:
        """How messages name the reference moment."""
        if self.activate_at is None:
            return "today"
        return f"the planned activation on {_fmt_time(self.activate_at)}"


def _check_validity(cert: CertificateInfo, ctx: _Context) -> list[Finding]:
    if cert.not_after < ctx.now:
        return [
            _error(
                Code.EXPIRED,
                f"The certificate expired on {_fmt_time(cert.not_after)}. "
                "Please send a current certificate.",
            )
        ]
    findings: list[Finding] = []
    if cert.not_before > ctx.reference:
        findings.append(
            _error(
                Code.NOT_YET_VALID,
                f"The certificate only becomes valid on {_fmt_time(cert.not_before)}, after "
                f"{ctx.reference_label}. Please send a certificate that is valid by then, or "
                "agree a later change date.",
            )
        )
    if ctx.activate_at is not None and cert.not_after <= ctx.activate_at:
        findings.append(
            _error(
                Code.EXPIRED_AT_ACTIVATION,
                f"The certificate expires on {_fmt_time(cert.not_after)}, before "
                f"{ctx.reference_label}. Please send a certificate that is still valid then.",
            )
        )
    elif cert.not_after - ctx.reference < EXPIRY_WARNING:
        days = (cert.not_after - ctx.reference).days
        findings.append(
            _warning(
                Code.EXPIRES_SOON,
                f"The certificate expires on {_fmt_time(cert.not_after)}, only {days} days after "
                f"{ctx.reference_label}, so we will have to exchange certificates again soon. "
                "A certificate with a longer validity would avoid that.",
            )
        )
    return findings


def _check_validity_length(cert: CertificateInfo) -> list[Finding]:
    total = cert.not_after - cert.not_before
    if total <= MAX_VALIDITY:
        return []
    years = total.days / 365.25
    return [
        _warning(
            Code.VALIDITY_TOO_LONG,
            f"The certificate is valid for about {years:.1f} years. More than 5 years is "
            "discouraged: if the key were ever exposed, it would stay usable for a long time.",
        )
    ]


def _check_key(cert: CertificateInfo) -> list[Finding]:
    if cert.key_type == "RSA" and cert.key_size is not None:
        return _check_rsa_size(cert.key_size)
    if cert.key_type == "EC":
        if cert.curve in _NIST_CURVES.values():
            return []
        return [
            _error(
                Code.EC_CURVE_NOT_ALLOWED,
                f"The key uses the elliptic curve {clean_text(cert.curve or 'unknown')}; only "
                "P-256, P-384 and P-521 are accepted. Please use one of those or an RSA key.",
            )
        ]
    if cert.key_type == "DSA":
        return [
            _error(
                Code.DSA_KEY,
                "The certificate has a DSA key. DSA is obsolete and not supported for AS2. "
                "Please use an RSA key (3072 bits recommended).",
            )
        ]
    return [
        _error(
            Code.UNSUPPORTED_KEY_TYPE,
            f"The certificate has a key of type {cert.key_type}, which AS2 software does not "
            "support. Please use an RSA key (3072 bits recommended).",
        )
    ]


def _check_rsa_size(bits: int) -> list[Finding]:
    if bits < MIN_RSA_BITS:
        return [
            _error(
                Code.RSA_KEY_TOO_SMALL,
                f"The RSA key has {bits} bits; at least {MIN_RSA_BITS} are required and "
                f"{RECOMMENDED_RSA_BITS} recommended. Please create a new key and certificate.",
            )
        ]
    if bits < RECOMMENDED_RSA_BITS:
        return [
            _warning(
                Code.RSA_2048,
                f"The RSA key has {bits} bits. This is accepted, but {RECOMMENDED_RSA_BITS} bits "
                "are recommended for certificates used beyond 2030.",
            )
        ]
    return []


def _check_signature_hash(cert: CertificateInfo) -> list[Finding]:
    if cert.signature_hash not in _WEAK_HASHES:
        return []
    label = _HASH_LABELS.get(cert.signature_hash or "", (cert.signature_hash or "").upper())
    return [
        _error(
            Code.WEAK_SIGNATURE_HASH,
            f"The certificate is signed with {label}, which is broken and rejected by current "
            "AS2 software. Please issue a new certificate signed with SHA-256 or stronger.",
        )
    ]


def _signed_by_own_key(parsed: _Parsed) -> bool:
    """Whether the certificate is self-signed: its own issuer, and its signature verifies so.

    A matching name alone is not enough: a CA may issue a certificate under its own name.
    Signatures we cannot verify (an algorithm beyond the library) fall back on the names;
    the signature hash and key checks judge such certificates.
    """
    if not parsed.info.self_signed:
        return False
    try:
        parsed.cert.verify_directly_issued_by(parsed.cert)
    except InvalidSignature:
        return False
    except _CRYPTO_ERRORS:
        return True
    return True


# How to create a self-signed certificate without the flag, for partners who want it gone.
_OPENSSL_CA_FALSE: Final = "-addext basicConstraints=critical,CA:FALSE"


def _check_ca(parsed: _Parsed) -> list[Finding]:
    """The CA flag (basicConstraints CA:TRUE) on the certificate judged as the sender's own.

    A CA that issued another certificate of the upload is never judged here: the end-entity
    selection takes the certificate it issued and reports the CA as part of the chain. A
    self-signed certificate used as its owner's AS2 certificate issues nothing, so the flag
    is harmless there: OpenSSL 3 sets it by default on `openssl req -x509`. Anything else
    marked CA was issued by a CA for issuing certificates, not for an AS2 station.
    """
    cert = parsed.info
    if not cert.is_ca:
        return []
    if _signed_by_own_key(parsed):
        return [
            _warning(
                Code.SELF_SIGNED_CA_FLAG,
                "Your certificate is marked as a certificate authority (basic constraints "
                "CA:TRUE), a flag meant for certificates that issue other certificates. OpenSSL "
                "sets it by default on self-signed certificates (openssl req -x509). We accept "
                "it because the certificate is self-signed and you use it as your own AS2 "
                "certificate, but some AS2 software refuses CA certificates for signing or "
                "encrypting messages. To remove the flag, create the certificate again with "
                f"the option {_OPENSSL_CA_FALSE} added to your openssl req -x509 command "
                "(-key with your key file keeps the same key); with Java's keytool, leave out "
                "-ext bc:c.",
            )
        ]
    return [
        _error(
            Code.CA_CERTIFICATE,
            "This certificate is marked as a certificate authority (basic constraints CA:TRUE) "
            f"and was issued by {_shorten(cert.issuer)!r}: it is a CA certificate, meant for "
            "issuing other certificates, not the certificate of your AS2 station. Please send "
            "your own AS2 certificate, one not marked as a CA (CA:FALSE or no basic "
            "constraints); its CA certificates may come along in the same file. If this was "
            "meant to be your AS2 certificate, have it issued again as an end-entity "
            "certificate (CA:FALSE), or create a self-signed certificate instead.",
        )
    ]


def _needed_key_usages(usage: Usage, key_type: str) -> list[tuple[str, frozenset[str]]]:
    """For each purpose of the usage: (purpose, key usages of which one is required)."""
    signing = ("signing", frozenset({"digitalSignature", "nonRepudiation"}))
    # RSA encrypts the message key with keyEncipherment; EC keys do it by key agreement (ECDH).
    encrypt_bits = {"keyEncipherment", "keyAgreement"} if key_type == "EC" else {"keyEncipherment"}
    encryption = ("encryption", frozenset(encrypt_bits))
    return {
        Usage.SIGNING: [signing],
        Usage.ENCRYPTION: [encryption],
        Usage.BOTH: [signing, encryption],
    }[usage]


_CA_KEY_USAGES: Final = frozenset({"keyCertSign", "cRLSign"})


def _check_key_usage(parsed: _Parsed, usage: Usage) -> list[Finding]:
    cert = parsed.info
    if not parsed.key_usage_present:
        return []  # no keyUsage extension: the key may be used for anything
    have = set(cert.key_usage)
    missing = [
        (purpose, needed)
        for purpose, needed in _needed_key_usages(usage, cert.key_type)
        if not have & needed
    ]
    if not missing:
        return []
    shown = ", ".join(_KEY_USAGE_LABELS.get(k, k) for k in cert.key_usage) or "none"
    wants = " and ".join(
        f"{purpose} needs {' or '.join(sorted(_KEY_USAGE_LABELS[n] for n in needed))}"
        for purpose, needed in missing
    )
    # A CA's key usage (as in openssl.cnf's v3_ca section) covers issuing, not messages.
    ca_only = (
        " Certificate Sign and CRL Sign only let a certificate authority issue certificates "
        "and revocation lists; they do not cover signing or encrypting AS2 messages."
        if have and have <= _CA_KEY_USAGES
        else ""
    )
    return [
        _error(
            Code.KEY_USAGE_INCOMPATIBLE,
            f"The certificate's key usage ({shown}) does not allow it to be used for "
            f"{usage.value}: {wants}.{ca_only} Please send a certificate with those key usages, "
            "or choose the usage that matches it.",
        )
    ]


def _check_eku(cert: CertificateInfo) -> list[Finding]:
    unusual = [p for p in cert.extended_key_usage if p not in _USUAL_EKUS]
    if not unusual:
        return []
    return [
        _warning(
            Code.UNUSUAL_EXTENDED_KEY_USAGE,
            f"The certificate is restricted to purposes that are unusual for AS2 "
            f"({', '.join(unusual)}). Some AS2 software rejects such a certificate for signing "
            "or encrypting messages; one without extended key usage, or with Email Protection, "
            "is the safe choice.",
        )
    ]


def _check_serial(parsed: _Parsed) -> list[Finding]:
    return [_non_positive_serial_finding()] if parsed.serial_value <= 0 else []


def _check_same_as_current(cert: CertificateInfo, current: str | None) -> list[Finding]:
    if not current:
        return []
    try:
        same = normalise_fingerprint(current) == cert.fingerprint_sha256
    except CertificateError:
        return []
    if not same:
        return []
    return [
        _warning(
            Code.SAME_AS_CURRENT,
            "This is the certificate we already have for you (same SHA-256 fingerprint). If you "
            "meant to send a new certificate, please check the file.",
        )
    ]


def _check_signature(parsed: _Parsed, issuer: _Parsed | None) -> list[Finding]:
    signer = parsed if parsed.info.self_signed else issuer
    if signer is None:
        return []  # issued by a CA that is not in the file: nothing to verify against
    try:
        parsed.cert.verify_directly_issued_by(signer.cert)
    except InvalidSignature:
        return [
            _error(
                Code.BAD_SIGNATURE,
                "The certificate's signature does not verify: the file was damaged or altered. "
                "Please export the certificate again and resend it.",
            )
        ]
    except _CRYPTO_ERRORS:
        return []  # an algorithm we cannot verify (e.g. SHA-1); judged by other checks
    return []


def _check_chain(chain: Sequence[_Parsed], now: datetime) -> list[Finding]:
    return [
        _warning(
            Code.CHAIN_EXPIRED,
            f"The issuing certificate {_shorten(p.info.subject)!r} included in the file expired "
            f"on {_fmt_time(p.info.not_after)}. Partners who check the chain will reject your "
            "certificate; please include the current CA certificate.",
        )
        for p in chain
        if p.info.not_after < now
    ]


def _describe_key(cert: CertificateInfo) -> str:
    if cert.key_type == "EC":
        return f"EC, curve {cert.curve}"
    if cert.key_size is not None:
        return f"{cert.key_type}, {cert.key_size} bits"
    return cert.key_type


def _details(parsed: _Parsed, chain: Sequence[_Parsed]) -> list[Finding]:
    cert = parsed.info
    days = (cert.not_after - cert.not_before).days
    usages = ", ".join(_KEY_USAGE_LABELS.get(k, k) for k in cert.key_usage)
    findings = [
        _info(Code.SUBJECT, f"Subject: {cert.subject}"),
        _info(Code.ISSUER, f"Issuer: {cert.issuer}"),
        _info(Code.SERIAL, f"Serial number: {cert.serial}"),
        _info(
            Code.VALIDITY,
            f"Valid from {_fmt_time(cert.not_before)} to {_fmt_time(cert.not_after)} ({days} days)",
        ),
        _info(Code.KEY, f"Key: {_describe_key(cert)}"),
        _info(Code.SIGNATURE_ALGORITHM, f"Signature algorithm: {parsed.signature_algorithm}"),
        _info(
            Code.KEY_USAGE,
            f"Key usage: {usages}"
            if parsed.key_usage_present
            else "Key usage: not restricted (no key usage extension)",
        ),
    ]
    if cert.extended_key_usage:
        purposes = ", ".join(cert.extended_key_usage)
        findings.append(_info(Code.EXTENDED_KEY_USAGE, f"Extended key usage: {purposes}"))
    findings += [
        _info(Code.FINGERPRINT_SHA256, f"SHA-256 fingerprint: {cert.fingerprint_sha256}"),
        _info(Code.FINGERPRINT_SHA1, f"SHA-1 fingerprint: {cert.fingerprint_sha1}"),
    ]
    if cert.self_signed:
        findings.append(
            _info(
                Code.SELF_SIGNED,
                "The certificate is self-signed. This is normal for AS2: we trust it because you "
                "send it to us directly, so please compare the fingerprints above.",
            )
        )
    if chain:
        subjects = "; ".join(_shorten(p.info.subject) for p in chain)
        findings.append(
            _info(Code.CHAIN, f"The file also contains {len(chain)} CA certificate(s): {subjects}")
        )
    return findings


def _judge(parsed: _Parsed, chain: Sequence[_Parsed], ctx: _Context) -> list[Finding]:
    cert = parsed.info
    issuer = chain[0] if chain and chain[0].issued(parsed) else None
    return [
        *parsed.problems,
        *_check_validity(cert, ctx),
        *_check_validity_length(cert),
        *_check_key(cert),
        *_check_signature_hash(cert),
        *_check_ca(parsed),
        *_check_key_usage(parsed, ctx.usage),
        *_check_eku(cert),
        *_check_serial(parsed),
        *_check_signature(parsed, issuer),
        *_check_same_as_current(cert, ctx.current_sha256),
        *_check_chain(chain, ctx.now),
        *_details(parsed, chain),
    ]


def _end_entity(parsed: list[_Parsed]) -> _Parsed | None:
    """The certificate that issued none of the others (preferring one not marked CA).

    None if ambiguous. A CA that issued another certificate of the upload is therefore part
    of the chain, never judged as the sender's own certificate (names issuing each other in
    a circle fall back on all certificates, preferring those not marked CA).
    """
    if len(parsed) == 1:
        return parsed[0]
    leaves = [p for p in parsed if not any(p.issued(q) for q in parsed)] or parsed
    non_ca = [p for p in leaves if not p.info.is_ca]
    candidates = non_ca or leaves
    return candidates[0] if len(candidates) == 1 else None


def _order_chain(leaf: _Parsed, parsed: list[_Parsed]) -> list[_Parsed]:
    """The other certificates, issuer first, then whatever is unrelated."""
    rest = [p for p in parsed if p is not leaf]
    ordered: list[_Parsed] = []
    current = leaf
    while True:
        issuer = next((p for p in rest if p.issued(current) and p not in ordered), None)
        if issuer is None:
            break
        ordered.append(issuer)
        current = issuer
    return ordered + [p for p in rest if p not in ordered]


_SEVERITY_RANK: Final = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _severity_rank(finding: Finding) -> int:
    return _SEVERITY_RANK[finding.severity]


def _nothing_found(found: _Extraction) -> list[Finding]:
    if found.private_key or any(f.severity is Severity.ERROR for f in found.findings):
        return []  # the reason is already stated
    if found.request:
        return [
            _error(
                Code.CERTIFICATE_REQUEST,
                "This is a certificate signing request (CSR), not a certificate. Please send the "
                "certificate itself: your AS2 software can export it, or your CA returned it.",
            )
        ]
    if found.recognised:
        return [
            _error(
                Code.NO_CERTIFICATE,
                "The file was readable but contains no certificate. Please send your public "
                "certificate (usually a .cer, .crt, .pem or .p7b file).",
            )
        ]
    return [
        _error(
            Code.UNREADABLE,
            "We could not read this file as a certificate. Please send your public certificate "
            "as PEM text (starting with -----BEGIN CERTIFICATE-----), a DER file (.cer, .crt, "
            ".der) or a PKCS#7 file (.p7b, .p7c).",
        )
    ]


def _private_key_finding(pkcs12_file: bool) -> Finding:
    if pkcs12_file:
        return _error(
            Code.PRIVATE_KEY,
            "This is a PKCS#12 (.p12/.pfx) file, a format made to carry a private key, so we do "
            "not open it. Never send a private key to anyone: it must stay on your own systems. "
            "If this file held your private key, consider that key compromised: create a new key "
            "and certificate, and send us only the public certificate (.cer, .crt, .pem or .p7b).",
        )
    return _error(
        Code.PRIVATE_KEY,
        "This file contains a private key. Never send a private key to anyone: it must stay on "
        "your own systems. As it has now left them, consider this key compromised: create a new "
        "key and certificate, and send us only the public certificate.",
    )


def _too_large(size: int) -> Finding:
    return _error(
        Code.TOO_LARGE,
        f"The file is {size // 1024} KB, but a certificate file is at most "
        f"{MAX_INPUT_BYTES // 1024} KB. Please send only your public certificate "
        "(.cer, .crt, .pem or .p7b).",
    )


def _inspect(data: bytes, ctx: _Context) -> Report:
    if len(data) > MAX_INPUT_BYTES:
        return Report([_too_large(len(data))])
    found = _extract(data)
    findings = list(found.findings)
    if found.private_key:
        findings.insert(0, _private_key_finding(found.pkcs12))
    parsed = [_describe(cert, der) for cert, der in found.certificates]
    if not parsed:
        return Report(findings + _nothing_found(found))
    leaf = _end_entity(parsed)
    if leaf is None:
        subjects = "; ".join(_shorten(p.info.subject) for p in parsed[:5])
        findings.append(
            _error(
                Code.MULTIPLE_END_ENTITIES,
                f"The file contains {len(parsed)} separate certificates that could each be yours "
                f"({subjects}). Please send one certificate at a time, with its CA certificates "
                "if it has any.",
            )
        )
        return Report(findings, None, [p.info for p in parsed])
    chain = _order_chain(leaf, parsed)
    return Report(findings + _judge(leaf, chain, ctx), leaf.info, [p.info for p in chain])


def inspect(
    data: bytes,
    *,
    usage: Usage,
    now: datetime,
    activate_at: datetime | None = None,
    current_sha256: str | None = None,
) -> Report:
    """Read an uploaded certificate file and judge it for AS2; never raises for any input bytes."""
    ctx = _Context(
        usage=Usage(usage),
        now=_require_aware(now, "now"),
        activate_at=None if activate_at is None else _require_aware(activate_at, "activate_at"),
        current_sha256=current_sha256,
    )
    try:
        report = _inspect(bytes(data), ctx)
    except Exception:
        # A partner must always get an answer; a distinct code keeps such bugs visible.
        log.exception("certificate inspection failed")
        return Report(
            [
                _error(
                    Code.INTERNAL_ERROR,
                    "We could not check this file because of an error on our side. Please try "
                    "again later or contact us.",
                )
            ]
        )
    report.findings.sort(key=_severity_rank)  # stable: errors, then warnings, then details
    return report


# ---------------------------------------------------------------------------
# Generating keys, certificates and requests
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """A new self-signed identity certificate and its private key."""

    certificate: CertificateInfo
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class PendingKey:
    """A new private key waiting for its CA-signed certificate."""

    csr_pem: str
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyedCertificate:
    """A certificate with its private key and CA chain, e.g. from an import."""

    certificate: CertificateInfo
    private_key: PrivateKey
    chain: tuple[CertificateInfo, ...] = ()


def _check_rsa_key_size(key_size: int) -> None:
    if key_size not in ALLOWED_RSA_SIZES:
        sizes = ", ".join(str(s) for s in ALLOWED_RSA_SIZES)
        raise CertificateError(f"The RSA key size must be one of {sizes} bits, not {key_size}.")


def _identity_name(as2_id: str, organisation: str) -> x509.Name:
    attributes = []
    for label, value, oid in (
        ("AS2 ID", as2_id, NameOID.COMMON_NAME),
        ("organisation", organisation, NameOID.ORGANIZATION_NAME),
    ):
        # 64 characters is the X.520 upper bound for both attributes.
        if not value.strip() or len(value) > 64 or clean_text(value) != value:
            raise CertificateError(
                f"The {label} must be 1 to 64 visible characters to fit in a certificate."
            )
        attributes.append(x509.NameAttribute(oid, value))
    return x509.Name(attributes)


def _key_usage_for(usage: Usage) -> x509.KeyUsage:
    signing = usage in (Usage.SIGNING, Usage.BOTH)
    encryption = usage in (Usage.ENCRYPTION, Usage.BOTH)
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=encryption,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _new_rsa_key(key_size: int) -> rsa.RSAPrivateKey:
    _check_rsa_key_size(key_size)
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def generate_identity_certificate(
    *,
    as2_id: str,
    organisation: str,
    usage: Usage,
    now: datetime,
    key_size: int = 3072,
    days: int = 730,
) -> Generated:
    """Create a new RSA key and a self-signed SHA-256 certificate for one of our AS2 identities."""
    now = _require_aware(now, "now").replace(microsecond=0)
    _check_rsa_key_size(key_size)
    if not 1 <= days <= MAX_GENERATED_DAYS:
        raise CertificateError(f"The validity must be 1 to {MAX_GENERATED_DAYS} days.")
    name = _identity_name(as2_id, organisation)
    key = _new_rsa_key(key_size)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage_for(Usage(usage)), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return Generated(certificate=_info_of(cert), private_key=key)


def _info_of(cert: x509.Certificate) -> CertificateInfo:
    return _describe(cert, cert.public_bytes(serialization.Encoding.DER)).info


def create_csr(*, as2_id: str, organisation: str, usage: Usage, key_size: int = 3072) -> PendingKey:
    """Create a new RSA key and a certificate signing request for a CA to sign."""
    name = _identity_name(as2_id, organisation)
    key = _new_rsa_key(key_size)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage_for(Usage(usage)), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return PendingKey(csr_pem=pem, private_key=key)


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------


def _public_der(key: PrivateKey | CertificatePublicKeyTypes) -> bytes:
    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_der(certificate_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a stored certificate (to tell whether a key was reused)."""
    try:
        cert = x509.load_der_x509_certificate(bytes(certificate_der))
        return _public_der(cert.public_key())
    except _CRYPTO_ERRORS as exc:
        raise CertificateError("The stored certificate could not be read.") from exc


def _certificates_in(data: bytes) -> list[_Parsed]:
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateError(_too_large(len(data)).message)
    found = _extract(bytes(data))
    if not found.certificates:
        raise CertificateError("No certificate could be read from the file.")
    return [_describe(cert, der) for cert, der in found.certificates]


def _split_for_key(key: PrivateKey, parsed: list[_Parsed]) -> KeyedCertificate:
    """Pick the certificate belonging to key; the others become its chain."""
    wanted = _public_der(key)
    for candidate in parsed:
        public = _read_public_key(candidate.cert)
        if public is not None and _public_der(public) == wanted:
            chain = _order_chain(candidate, parsed)
            return KeyedCertificate(candidate.info, key, tuple(p.info for p in chain))
    raise CertificateError(
        "The certificate does not match the private key: it was issued for a different key. "
        "Please pick the certificate that belongs to this key."
    )


@_refusing("The certificate could not be read.")
def match_signed_bundle(private_key: PrivateKey, data: bytes) -> KeyedCertificate:
    """Find the CA-signed certificate for a pending key in data, with its chain."""
    return _split_for_key(private_key, _certificates_in(data))


def match_signed_certificate(private_key: PrivateKey, data: bytes) -> CertificateInfo:
    """Return the certificate in data that belongs to the pending key, or raise CertificateError."""
    return match_signed_bundle(private_key, data).certificate


def _accepted_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise CertificateError("Only RSA and EC private keys can be used for AS2.")


def _private_key_block(data: bytes) -> bytes:
    """The first PEM private key block of data (which may also hold certificates)."""
    for match in _PEM_BEGIN.finditer(data):
        label = match.group(1)
        if label.endswith(b"PRIVATE KEY"):
            end_marker = b"-----END " + label + b"-----"
            end = data.find(end_marker, match.end())
            if end >= 0:
                return data[match.start() : end + len(end_marker)]
    raise CertificateError("No private key was found in the key file.")


def _load_private_key(data: bytes, passphrase: bytes | None) -> PrivateKey:
    pem = b"-----BEGIN " in data
    raw = _private_key_block(data) if pem else data
    load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    encrypted = b"ENCRYPTED" in raw[:200] if pem else _is_encrypted_pkcs8(raw)
    password = passphrase if passphrase and encrypted else None
    try:
        key = load(raw, password)
    except TypeError as exc:
        raise CertificateError("The private key is protected: please give its passphrase.") from exc
    except UnsupportedAlgorithm as exc:
        raise CertificateError(
            "The private key uses a type or protection that is not supported."
        ) from exc
    except _CRYPTO_ERRORS as exc:
        reason = (
            "the passphrase is wrong"
            if encrypted
            else "the file is damaged or not PKCS#8 or traditional PEM/DER"
        )
        raise CertificateError(f"The private key could not be read: {reason}.") from exc
    return _accepted_key(key)


@_refusing("The certificate or the private key could not be read.")
def load_pem_bundle(
    cert_data: bytes, key_data: bytes, passphrase: bytes | None
) -> KeyedCertificate:
    """Import a certificate (PEM, DER or PKCS#7, with chain) and its PEM or DER private key."""
    if len(key_data) > MAX_INPUT_BYTES:
        raise CertificateError(_too_large(len(key_data)).message)
    key = _load_private_key(bytes(key_data), passphrase)
    try:
        parsed = _certificates_in(cert_data)
    except CertificateError:
        # A combined file may carry the certificate next to the key.
        parsed = _certificates_in(key_data)
    return _split_for_key(key, parsed)


@_refusing("The PKCS#12 file could not be read.")
def load_pkcs12(data: bytes, passphrase: bytes) -> KeyedCertificate:
    """Import a PKCS#12 (.p12/.pfx) file holding a private key, its certificate and chain."""
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateError(_too_large(len(data)).message)
    loaded = _open_pkcs12(bytes(data), passphrase)
    key, cert, others = loaded
    if key is None:
        raise CertificateError("The PKCS#12 file contains no private key.")
    key = _accepted_key(key)
    parsed = [
        _describe(c, c.public_bytes(serialization.Encoding.DER))
        for c in [*([cert] if cert else []), *others]
    ]
    if not parsed:
        raise CertificateError("The PKCS#12 file contains no certificate.")
    try:
        return _split_for_key(key, parsed)
    except CertificateError as exc:
        raise CertificateError(
            "The private key in the PKCS#12 file does not belong to its certificate."
        ) from exc


_Pkcs12Content: TypeAlias = tuple[object | None, x509.Certificate | None, list[x509.Certificate]]


def _open_pkcs12(data: bytes, passphrase: bytes) -> _Pkcs12Content:
    # Tools disagree on whether "no password" means an empty or an absent one.
    passwords = [passphrase] if passphrase else [None, b""]
    for password in passwords:
        try:
            return pkcs12.load_key_and_certificates(data, password)
        except UnsupportedAlgorithm as exc:
            raise CertificateError(
                "The PKCS#12 file is protected with an algorithm that is not supported; please "
                "export it again with AES-256 encryption."
            ) from exc
        except _CRYPTO_ERRORS:
            continue
    if _is_pfx(data):
        raise CertificateError("The PKCS#12 file could not be opened: the passphrase is wrong.")
    raise CertificateError("This is not a PKCS#12 (.p12/.pfx) file.")


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def _load_for_export(der: bytes) -> x509.Certificate:
    try:
        return _load_der_certificate(bytes(der))
    except _CRYPTO_ERRORS as exc:
        raise CertificateError("The stored certificate could not be read.") from exc


def export_pem(der: bytes) -> bytes:
    """Return the certificate as PEM."""
    return _load_for_export(der).public_bytes(serialization.Encoding.PEM)


def export_der(der: bytes) -> bytes:
    """Return the certificate as DER (.cer), checking that it is one."""
    return _load_for_export(der).public_bytes(serialization.Encoding.DER)


@_refusing("The certificates could not be written as PKCS#7.")
def export_p7c(der: bytes, chain_ders: Sequence[bytes] = ()) -> bytes:
    """Return the certificate and its chain as a DER PKCS#7 certificates-only file (.p7c)."""
    certs = [_load_for_export(d) for d in [der, *chain_ders]]
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


@_refusing("The PKCS#12 file could not be written.")
def export_pkcs12(
    *,
    private_key: PrivateKey,
    certificate_der: bytes,
    chain_ders: Sequence[bytes],
    passphrase: bytes,
    friendly_name: bytes,
    legacy: bool = False,
) -> bytes:
    """Return a passphrase-protected PKCS#12 file; legacy uses 3DES/SHA-1 for old software."""
    if not passphrase:
        raise CertificateError("A PKCS#12 file needs a passphrase.")
    cert = _load_for_export(certificate_der)
    public = _read_public_key(cert)
    if public is None or _public_der(public) != _public_der(private_key):
        raise CertificateError("The private key does not belong to the certificate.")
    chain = [_load_for_export(d) for d in chain_ders]
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_PKCS12_KDF_ROUNDS)
    if legacy:
        # Old AS2 software (and Windows before 2016) only reads 3DES with a SHA-1 MAC.
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())  # noqa: S303
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        builder = builder.hmac_hash(hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(
        friendly_name or None, private_key, cert, chain or None, builder.build(passphrase)
    )


def private_key_to_der(key: PrivateKey) -> bytes:
    """Return the key as unencrypted PKCS#8 DER, only to hand to the key ring for encryption."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_der(data: bytes) -> PrivateKey:
    """Load an unencrypted PKCS#8 DER private key, as decrypted by the key ring."""
    try:
        key = serialization.load_der_private_key(bytes(data), None)
    except _CRYPTO_ERRORS as exc:
        raise CertificateError("The stored private key could not be read.") from exc
    return _accepted_key(key)
