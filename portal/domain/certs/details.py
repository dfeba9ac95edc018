"""The details read back to the sender: names, serial, validity, key, usages, fingerprints."""

from __future__ import annotations

from portal.domain.certs.chain import Chain
from portal.domain.certs.describe import KEY_USAGE_LABELS, Parsed
from portal.domain.certs.model import CertificateInfo, Code, Finding, info
from portal.domain.certs.text import fmt_time, shorten


def _describe_key(cert: CertificateInfo) -> str:
    if cert.key_type == "EC":
        return f"EC, curve {cert.curve}"
    if cert.key_size is not None:
        return f"{cert.key_type}, {cert.key_size} bits"
    return cert.key_type


def _chain_finding(chain: Chain) -> list[Finding]:
    """What the file holds above the certificate, and which of it is kept."""
    if not chain.issuers:
        return []
    path = " > ".join(shorten(p.info.subject) for p in chain.issuers)
    message = f"The file also contains the CA certificates above yours, issuer first: {path}."
    if chain.intermediates:
        message += (
            f" We keep the {len(chain.intermediates)} intermediate CA certificate(s) with your "
            "certificate and pass them on to software that checks the chain."
        )
    if chain.root is not None:
        message += (
            f" The root {shorten(chain.root.info.subject)!r} is not kept: software that checks "
            "the chain must trust the root itself, not take it from the file."
        )
    return [info(Code.CHAIN, message)]


def detail_findings(parsed: Parsed, chain: Chain) -> list[Finding]:
    """The informational findings about the sender's certificate and the CAs sent with it."""
    cert = parsed.info
    days = (cert.not_after - cert.not_before).days
    usages = ", ".join(KEY_USAGE_LABELS.get(k, k) for k in cert.key_usage)
    findings = [
        info(Code.SUBJECT, f"Subject: {cert.subject}"),
        info(Code.ISSUER, f"Issuer: {cert.issuer}"),
        info(Code.SERIAL, f"Serial number: {cert.serial}"),
        info(
            Code.VALIDITY,
            f"Valid from {fmt_time(cert.not_before)} to {fmt_time(cert.not_after)} ({days} days)",
        ),
        info(Code.KEY, f"Key: {_describe_key(cert)}"),
        info(Code.SIGNATURE_ALGORITHM, f"Signature algorithm: {parsed.signature_algorithm}"),
        info(
            Code.KEY_USAGE,
            f"Key usage: {usages}"
            if parsed.key_usage_present
            else "Key usage: not restricted (no key usage extension)",
        ),
    ]
    if cert.extended_key_usage:
        purposes = ", ".join(cert.extended_key_usage)
        findings.append(info(Code.EXTENDED_KEY_USAGE, f"Extended key usage: {purposes}"))
    findings += [
        info(Code.FINGERPRINT_SHA256, f"SHA-256 fingerprint: {cert.fingerprint_sha256}"),
        info(Code.FINGERPRINT_SHA1, f"SHA-1 fingerprint: {cert.fingerprint_sha1}"),
    ]
    if cert.self_signed:
        findings.append(
            info(
                Code.SELF_SIGNED,
                "The certificate is self-signed. This is normal for AS2: we trust it because you "
                "send it to us directly, so please compare the fingerprints above.",
            )
        )
    return findings + _chain_finding(chain)
