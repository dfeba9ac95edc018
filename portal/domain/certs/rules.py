"""The checks on the sender's certificate and the judgement that lists their findings in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from portal.domain.certs.chain import Chain, verifies
from portal.domain.certs.describe import KEY_USAGE_LABELS, Parsed, non_positive_serial_finding
from portal.domain.certs.details import detail_findings
from portal.domain.certs.model import (
    CertificateError,
    CertificateInfo,
    Code,
    Finding,
    Param,
    Usage,
    error,
    warning,
)
from portal.domain.certs.strength import check_key, check_signature_hash
from portal.domain.certs.text import fmt_time, normalise_fingerprint, shorten
from portal.domain.vocab import usage_words

EXPIRY_WARNING: Final = timedelta(days=30)
# Five calendar years including up to two leap days.
MAX_VALIDITY: Final = timedelta(days=5 * 365 + 2)

# AS2 signs and encrypts S/MIME messages. emailProtection is the S/MIME purpose;
# serverAuth/clientAuth are common on certificates shared with the HTTPS side of
# AS2 and are tolerated by AS2 products. Anything else (code signing, time
# stamping, OCSP, vendor OIDs) means the partner most likely picked the wrong
# certificate, and strict S/MIME stacks refuse such certificates.
_USUAL_EKUS: Final = frozenset(
    {"emailProtection", "clientAuth", "serverAuth", "anyExtendedKeyUsage"}
)
_CA_KEY_USAGES: Final = frozenset({"keyCertSign", "cRLSign"})


@dataclass(frozen=True)
class Context:
    """What the certificate is judged for: its usage, the time and the certificate it replaces."""

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
        return f"the planned activation on {fmt_time(self.activate_at)}"

    @property
    def reference_params(self) -> dict[str, Param]:
        """The reference moment as a finding's params: the activation, when planned."""
        return {} if self.activate_at is None else {"activation": self.activate_at}


def _check_validity(cert: CertificateInfo, ctx: Context) -> list[Finding]:
    if cert.not_after < ctx.now:
        return [
            error(
                Code.EXPIRED,
                f"The certificate expired on {fmt_time(cert.not_after)}. "
                "Please send a current certificate.",
                not_after=cert.not_after,
            )
        ]
    findings: list[Finding] = []
    if cert.not_before > ctx.reference:
        findings.append(
            error(
                Code.NOT_YET_VALID,
                f"The certificate only becomes valid on {fmt_time(cert.not_before)}, after "
                f"{ctx.reference_label}. Please send a certificate that is valid by then, or "
                "agree a later change date.",
                not_before=cert.not_before,
                **ctx.reference_params,
            )
        )
    if ctx.activate_at is not None and cert.not_after <= ctx.activate_at:
        findings.append(
            error(
                Code.EXPIRED_AT_ACTIVATION,
                f"The certificate expires on {fmt_time(cert.not_after)}, before "
                f"{ctx.reference_label}. Please send a certificate that is still valid then.",
                not_after=cert.not_after,
                **ctx.reference_params,
            )
        )
    elif cert.not_after - ctx.reference < EXPIRY_WARNING:
        days = (cert.not_after - ctx.reference).days
        findings.append(
            warning(
                Code.EXPIRES_SOON,
                f"The certificate expires on {fmt_time(cert.not_after)}, only {days} days after "
                f"{ctx.reference_label}, so we will have to exchange certificates again soon. "
                "A certificate with a longer validity would avoid that.",
                not_after=cert.not_after,
                days=days,
                **ctx.reference_params,
            )
        )
    return findings


def _check_validity_length(cert: CertificateInfo) -> list[Finding]:
    total = cert.not_after - cert.not_before
    if total <= MAX_VALIDITY:
        return []
    years = round(total.days / 365.25, 1)
    return [
        warning(
            Code.VALIDITY_TOO_LONG,
            f"The certificate is valid for about {years:.1f} years. More than 5 years is "
            "discouraged: if the key were ever exposed, it would stay usable for a long time.",
            years=years,
        )
    ]


def _signed_by_own_key(parsed: Parsed) -> bool:
    """Whether the certificate is self-signed: its own issuer, and its signature verifies so.

    A matching name alone is not enough: a CA may issue a certificate under its own name.
    Signatures we cannot verify (an algorithm beyond the library) fall back on the names;
    the signature hash and key checks judge such certificates.
    """
    if not parsed.info.self_signed:
        return False
    return verifies(parsed, parsed) is not False


def _check_ca(parsed: Parsed) -> list[Finding]:
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
            warning(
                Code.SELF_SIGNED_CA_FLAG,
                "Your certificate is marked as a certificate authority (basic constraints "
                "CA:TRUE), a flag meant for certificates that issue other certificates. OpenSSL "
                "sets it by default on self-signed certificates (openssl req -x509). We accept "
                "it because the certificate is self-signed and you use it as your own AS2 "
                "certificate, but some AS2 software refuses CA certificates for signing or "
                "encrypting messages. To remove the flag, create the certificate again with "
                "the option -addext basicConstraints=critical,CA:FALSE added to your openssl "
                "req -x509 command "
                "(-key with your key file keeps the same key); with Java's keytool, leave out "
                "-ext bc:c.",
            )
        ]
    return [
        error(
            Code.CA_CERTIFICATE,
            "This certificate is marked as a certificate authority (basic constraints CA:TRUE) "
            f"and was issued by '{shorten(cert.issuer)}': it is a CA certificate, meant for "
            "issuing other certificates, not the certificate of your AS2 station. Please send "
            "your own AS2 certificate, one not marked as a CA (CA:FALSE or no basic "
            "constraints); its CA certificates may come along in the same file. If this was "
            "meant to be your AS2 certificate, have it issued again as an end-entity "
            "certificate (CA:FALSE), or create a self-signed certificate instead.",
            issuer=shorten(cert.issuer),
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


def _check_key_usage(parsed: Parsed, usage: Usage) -> list[Finding]:
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
    shown = tuple(KEY_USAGE_LABELS.get(k, k) for k in cert.key_usage)
    needs = {
        f"{purpose}_needs": tuple(sorted(KEY_USAGE_LABELS[n] for n in needed))
        for purpose, needed in missing
    }
    wants = " and ".join(
        f"{purpose} needs {' or '.join(sorted(KEY_USAGE_LABELS[n] for n in needed))}"
        for purpose, needed in missing
    )
    # A CA's key usage (as in openssl.cnf's v3_ca section) covers issuing, not messages.
    ca_only = bool(have and have <= _CA_KEY_USAGES)
    ca_sentence = (
        " Certificate Sign and CRL Sign only let a certificate authority issue certificates "
        "and revocation lists; they do not cover signing or encrypting AS2 messages."
        if ca_only
        else ""
    )
    return [
        error(
            Code.KEY_USAGE_INCOMPATIBLE,
            f"The certificate's key usage ({', '.join(shown) or 'none'}) does not allow it to "
            f"be used for {usage_words(usage)}: {wants}.{ca_sentence} Please send a certificate "
            "with those key usages, or choose the usage that matches it.",
            key_usage=shown,
            usage=usage.value,
            ca_only=ca_only,
            **needs,
        )
    ]


def _check_eku(cert: CertificateInfo) -> list[Finding]:
    unusual = [p for p in cert.extended_key_usage if p not in _USUAL_EKUS]
    if not unusual:
        return []
    return [
        warning(
            Code.UNUSUAL_EXTENDED_KEY_USAGE,
            f"The certificate is restricted to purposes that are unusual for AS2 "
            f"({', '.join(unusual)}). Some AS2 software rejects such a certificate for signing "
            "or encrypting messages; one without extended key usage, or with Email Protection, "
            "is the safe choice.",
            purposes=", ".join(unusual),
        )
    ]


def _check_serial(parsed: Parsed) -> list[Finding]:
    return [non_positive_serial_finding()] if parsed.serial_value <= 0 else []


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
        warning(
            Code.SAME_AS_CURRENT,
            "This is the certificate we already have for you (same SHA-256 fingerprint). If you "
            "meant to send a new certificate, please check the file.",
        )
    ]


def _check_signature(parsed: Parsed, issuer: Parsed | None) -> list[Finding]:
    signer = parsed if parsed.info.self_signed else issuer
    if signer is None or verifies(parsed, signer) is not False:
        # Issued by a CA that is not in the file, or an algorithm we cannot verify (e.g.
        # SHA-1): nothing to verify against here; other checks judge such certificates.
        return []
    if signer is parsed:
        return [
            error(
                Code.BAD_SIGNATURE,
                "The certificate's signature does not verify: the file was damaged or altered. "
                "Please export the certificate again and resend it.",
            )
        ]
    return [
        error(
            Code.BAD_SIGNATURE,
            "The certificate's signature does not verify with the key of the CA certificate "
            f"'{shorten(signer.info.subject)}' sent with it: that CA certificate has the name "
            "of your certificate's issuer but did not issue it (perhaps an older or newer CA "
            "certificate of the same name), or the file was altered. Please send the CA "
            "certificates your CA gave you with this certificate, or the certificate alone.",
            issuer=shorten(signer.info.subject),
        )
    ]


def _can_issue(parsed: Parsed) -> bool:
    """Whether a certificate may issue others: CA:TRUE and, if key usage is set, keyCertSign."""
    cert = parsed.info
    return cert.is_ca and (not parsed.key_usage_present or "keyCertSign" in cert.key_usage)


def _check_link(below: Parsed, issuer: Parsed, leaf: Parsed) -> list[Finding]:
    """One step of the chain: ISSUER, named as the issuer of BELOW, signed it and is a CA."""
    findings: list[Finding] = []
    # The leaf's own signature is judged by _check_signature, with the same issuer.
    if below is not leaf and verifies(below, issuer) is False:
        findings.append(
            error(
                Code.CHAIN_BAD_SIGNATURE,
                f"The CA certificate '{shorten(below.info.subject)}' in the file names "
                f"'{shorten(issuer.info.subject)}' as its issuer, but the signature does not "
                "verify with the key of the certificate of that name sent with it: these CA "
                "certificates do not belong together (perhaps one is an older or newer "
                "version), or the file was altered. Please send the CA certificates your CA "
                "gave you with this certificate, or the certificate alone.",
                subject=shorten(below.info.subject),
                issuer=shorten(issuer.info.subject),
            )
        )
    if not _can_issue(issuer):
        what = (
            "is not a CA (basic constraints CA:TRUE)"
            if not issuer.info.is_ca
            else ("has a key usage without Certificate Sign")
        )
        findings.append(
            error(
                Code.CHAIN_NOT_CA,
                f"The certificate '{shorten(issuer.info.subject)}' in the file issued "
                f"'{shorten(below.info.subject)}' but {what}, so it may not issue "
                "certificates: software that checks the chain will reject your certificate. "
                "Please send the CA certificates your CA gave you with this certificate, or "
                "the certificate alone.",
                issuer=shorten(issuer.info.subject),
                subject=shorten(below.info.subject),
                is_ca=issuer.info.is_ca,
            )
        )
    return findings


def _check_issuer_validity(issuer: Parsed, now: datetime) -> list[Finding]:
    cert = issuer.info
    if cert.not_after < now:
        return [
            warning(
                Code.CHAIN_EXPIRED,
                f"The issuing certificate '{shorten(cert.subject)}' included in the file "
                f"expired on {fmt_time(cert.not_after)}. Partners who check the chain will "
                "reject your certificate; please include the current CA certificate.",
                subject=shorten(cert.subject),
                not_after=cert.not_after,
            )
        ]
    if cert.not_before > now:
        return [
            warning(
                Code.CHAIN_NOT_YET_VALID,
                f"The issuing certificate '{shorten(cert.subject)}' included in the file only "
                f"becomes valid on {fmt_time(cert.not_before)}. Until then partners who check "
                "the chain will reject your certificate; please include the CA certificate "
                "valid today.",
                subject=shorten(cert.subject),
                not_before=cert.not_before,
            )
        ]
    return []


def _check_unrelated(parsed: Parsed, chain: Chain) -> list[Finding]:
    return [
        warning(
            Code.CHAIN_UNRELATED,
            f"The certificate '{shorten(other.info.subject)}' in the file did not issue "
            f"your certificate (issued by '{shorten(parsed.info.issuer)}') nor any of its CA "
            "certificates, so we do not keep it. If your certificate was issued by an "
            "intermediate CA, please include that CA's certificate instead.",
            subject=shorten(other.info.subject),
            issuer=shorten(parsed.info.issuer),
        )
        for other in chain.unrelated
    ]


def _check_chain(parsed: Parsed, chain: Chain, now: datetime) -> list[Finding]:
    """Each issuer signed the certificate below it, may issue, and is valid now."""
    findings: list[Finding] = []
    below = parsed
    for issuer in chain.issuers:
        findings += _check_link(below, issuer, parsed)
        findings += _check_issuer_validity(issuer, now)
        below = issuer
    return findings + _check_unrelated(parsed, chain)


def judge(parsed: Parsed, chain: Chain, ctx: Context) -> list[Finding]:
    """Every finding about the sender's certificate and its chain, in the order of the checks."""
    cert = parsed.info
    issuer = chain.issuers[0] if chain.issuers else None
    return [
        *parsed.problems,
        *_check_validity(cert, ctx),
        *_check_validity_length(cert),
        *check_key(cert),
        *check_signature_hash(cert),
        *_check_ca(parsed),
        *_check_key_usage(parsed, ctx.usage),
        *_check_eku(cert),
        *_check_serial(parsed),
        *_check_signature(parsed, issuer),
        *_check_same_as_current(cert, ctx.current_sha256),
        *_check_chain(parsed, chain, ctx.now),
        *detail_findings(parsed, chain),
    ]
