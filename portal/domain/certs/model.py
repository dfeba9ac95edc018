"""The vocabulary of certificate checking: errors, usages, codes, findings and reports.

The bottom of the package: it imports no other module of it.
"""

from __future__ import annotations

import base64
import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, ParamSpec, TypeAlias, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Re-exported: a report names the usage it was checked for.
from portal.domain.vocab import Usage as Usage

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Everything the cryptography library raises on malformed input. Its warnings (odd
# serials, BER instead of DER) are included because under `-W error` they are raised.
CRYPTO_ERRORS: Final = (
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


def refusing(message: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Let only CertificateError out: a cryptography error becomes one with message."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except CertificateError:
                raise
            except CRYPTO_ERRORS as exc:
                raise CertificateError(message) from exc

        return wrapper

    return decorate


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
    CHAIN_BAD_SIGNATURE = "chain_bad_signature"
    CHAIN_NOT_CA = "chain_not_ca"
    INTERNAL_ERROR = "internal_error"
    # warnings
    EXPIRES_SOON = "expires_soon"
    RSA_2048 = "rsa_2048"
    VALIDITY_TOO_LONG = "validity_too_long"
    SAME_AS_CURRENT = "same_as_current"
    UNUSUAL_EXTENDED_KEY_USAGE = "unusual_extended_key_usage"
    TRAILING_DATA = "trailing_data"
    CHAIN_EXPIRED = "chain_expired"
    CHAIN_NOT_YET_VALID = "chain_not_yet_valid"
    CHAIN_UNRELATED = "chain_unrelated"
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


# A value a finding's message carries: a moment, a number, a name, a list of names, or a
# flag that picks one of the code's wordings.
Param: TypeAlias = str | int | float | bool | datetime | tuple[str, ...]


def _no_params() -> Mapping[str, Param]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Finding:
    """One result of inspecting a certificate, worded for the partner.

    The message is English. PARAMS are the values it carries (dates, key sizes, names), by
    name, so that a page in another language can word the finding from its code and them
    (portal/web/partner/findings.py); a finding with none has an empty mapping.
    """

    code: str
    severity: Severity
    message: str
    params: Mapping[str, Param] = field(default_factory=_no_params, hash=False)

    def to_dict(self) -> dict[str, str]:
        """Return the finding as a JSON-safe mapping (code, severity, message: scripts read it)."""
        return {"code": str(self.code), "severity": str(self.severity), "message": self.message}


def _finding(code: Code, severity: Severity, message: str, params: dict[str, Param]) -> Finding:
    return Finding(code, severity, message, MappingProxyType(params))


def error(code: Code, message: str, **params: Param) -> Finding:
    """A finding that blocks the certificate."""
    return _finding(code, Severity.ERROR, message, params)


def warning(code: Code, message: str, **params: Param) -> Finding:
    """A finding a person must acknowledge."""
    return _finding(code, Severity.WARNING, message, params)


def info(code: Code, message: str, **params: Param) -> Finding:
    """A detail to read back."""
    return _finding(code, Severity.INFO, message, params)


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


@dataclass
class Report:
    """The outcome of inspecting an upload: findings and what was found."""

    findings: list[Finding] = field(default_factory=list)
    certificate: CertificateInfo | None = None
    # Every other certificate of the upload: the issuers from the leaf's up, then the rest.
    chain: list[CertificateInfo] = field(default_factory=list)
    # What is kept with the certificate: its issuers, leaf's issuer first, without the root.
    intermediates: list[CertificateInfo] = field(default_factory=list)

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
            "intermediates": [c.to_dict() for c in self.intermediates],
        }
