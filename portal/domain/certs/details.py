"""The details read back to the sender: names, serial, validity, key, usages, fingerprints."""

from __future__ import annotations

from portal.domain.certs.chain import Chain
from portal.domain.certs.describe import KEY_USAGE_LABELS, Parsed
from portal.domain.certs.model import CertificateInfo, Code, Finding, Param, info
from portal.domain.certs.text import fmt_time, shorten


def _key_finding(cert: CertificateInfo) -> Finding:
    if cert.key_type == "EC":
        return info(Code.KEY, f"Key: EC, curve {cert.curve}", key_type="EC", curve=str(cert.curve))
    if cert.key_size is not None:
        return info(
            Code.KEY,
            f"Key: {cert.key_type}, {cert.key_size} bits",
            key_type=cert.key_type,
            bits=cert.key_size,
        )
    return info(Code.KEY, f"Key: {cert.key_type}", key_type=cert.key_type)


def _chain_finding(chain: Chain) -> list[Finding]:
    """What the file holds above the certificate, and which of it is kept."""
    if not chain.issuers:
        return []
    path = " > ".join(shorten(p.info.subject) for p in chain.issuers)
    params: dict[str, Param] = {"path": path}
    message = f"The file also contains the CA certificates above yours, issuer first: {path}."
    if chain.intermediates:
        params["kept"] = len(chain.intermediates)
        message += (
            f" We keep the {len(chain.intermediates)} intermediate CA certificate(s) with your "
            "certificate and pass them on to software that checks the chain."
        )
    if chain.root is not None:
        params["root"] = shorten(chain.root.info.subject)
        message += (
            f" The root '{shorten(chain.root.info.subject)}' is not kept: software that checks "
            "the chain must trust the root itself, not take it from the file."
        )
    return [info(Code.CHAIN, message, **params)]


def detail_findings(parsed: Parsed, chain: Chain) -> list[Finding]:
    """The informational findings about the sender's certificate and the CAs sent with it."""
    cert = parsed.info
    days = (cert.not_after - cert.not_before).days
    usages = ", ".join(KEY_USAGE_LABELS.get(k, k) for k in cert.key_usage)
    findings = [
        info(Code.SUBJECT, f"Subject: {cert.subject}", subject=cert.subject),
        info(Code.ISSUER, f"Issuer: {cert.issuer}", issuer=cert.issuer),
        info(Code.SERIAL, f"Serial number: {cert.serial}", serial=cert.serial),
        info(
            Code.VALIDITY,
            f"Valid from {fmt_time(cert.not_before)} to {fmt_time(cert.not_after)} ({days} days)",
            not_before=cert.not_before,
            not_after=cert.not_after,
            days=days,
        ),
        _key_finding(cert),
        info(
            Code.SIGNATURE_ALGORITHM,
            f"Signature algorithm: {parsed.signature_algorithm}",
            algorithm=parsed.signature_algorithm,
        ),
        info(Code.KEY_USAGE, f"Key usage: {usages}", usages=usages)
        if parsed.key_usage_present
        else info(Code.KEY_USAGE, "Key usage: not restricted (no key usage extension)"),
    ]
    if cert.extended_key_usage:
        purposes = ", ".join(cert.extended_key_usage)
        findings.append(
            info(Code.EXTENDED_KEY_USAGE, f"Extended key usage: {purposes}", purposes=purposes)
        )
    findings += [
        info(
            Code.FINGERPRINT_SHA256,
            f"SHA-256 fingerprint: {cert.fingerprint_sha256}",
            fingerprint=cert.fingerprint_sha256,
        ),
        info(
            Code.FINGERPRINT_SHA1,
            f"SHA-1 fingerprint: {cert.fingerprint_sha1}",
            fingerprint=cert.fingerprint_sha1,
        ),
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
