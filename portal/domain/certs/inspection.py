"""Inspecting an upload: extract what is in it, pick the sender's certificate, judge it.

Named `inspection`, not `inspect`, so that the module never shadows the `inspect` function
the package exports.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

from portal.domain.certs.chain import end_entity, sort_chain
from portal.domain.certs.describe import Parsed, describe
from portal.domain.certs.extract import MAX_INPUT_BYTES, Extraction, extract, too_large
from portal.domain.certs.model import Code, Finding, Report, Severity, Usage, error
from portal.domain.certs.rules import Context, judge
from portal.domain.certs.text import require_aware, shorten

# The package's name, as before it was split into modules: log filters may rely on it.
log = logging.getLogger("portal.domain.certs")

_SEVERITY_RANK: Final = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _severity_rank(finding: Finding) -> int:
    return _SEVERITY_RANK[finding.severity]


def _nothing_found(found: Extraction) -> list[Finding]:
    if found.private_key or any(f.severity is Severity.ERROR for f in found.findings):
        return []  # the reason is already stated
    if found.request:
        return [
            error(
                Code.CERTIFICATE_REQUEST,
                "This is a certificate signing request (CSR), not a certificate. Please send the "
                "certificate itself: your AS2 software can export it, or your CA returned it.",
            )
        ]
    if found.recognised:
        return [
            error(
                Code.NO_CERTIFICATE,
                "The file was readable but contains no certificate. Please send your public "
                "certificate (usually a .cer, .crt, .pem or .p7b file).",
            )
        ]
    return [
        error(
            Code.UNREADABLE,
            "We could not read this file as a certificate. Please send your public certificate "
            "as PEM text (starting with -----BEGIN CERTIFICATE-----), a DER file (.cer, .crt, "
            ".der) or a PKCS#7 file (.p7b, .p7c).",
        )
    ]


def _private_key_finding(pkcs12_file: bool) -> Finding:
    if pkcs12_file:
        return error(
            Code.PRIVATE_KEY,
            "This is a PKCS#12 (.p12/.pfx) file, a format made to carry a private key, so we do "
            "not open it. Never send a private key to anyone: it must stay on your own systems. "
            "If this file held your private key, consider that key compromised: create a new key "
            "and certificate, and send us only the public certificate (.cer, .crt, .pem or .p7b).",
        )
    return error(
        Code.PRIVATE_KEY,
        "This file contains a private key. Never send a private key to anyone: it must stay on "
        "your own systems. As it has now left them, consider this key compromised: create a new "
        "key and certificate, and send us only the public certificate.",
    )


def _multiple_end_entities(parsed: list[Parsed]) -> Finding:
    subjects = "; ".join(shorten(p.info.subject) for p in parsed[:5])
    return error(
        Code.MULTIPLE_END_ENTITIES,
        f"The file contains {len(parsed)} separate certificates that could each be yours "
        f"({subjects}). Please send one certificate at a time, with its CA certificates "
        "if it has any.",
        count=len(parsed),
        subjects=subjects,
    )


def _inspect(data: bytes, ctx: Context) -> Report:
    if len(data) > MAX_INPUT_BYTES:
        return Report([too_large(len(data))])
    found = extract(data)
    findings = list(found.findings)
    if found.private_key:
        findings.insert(0, _private_key_finding(found.pkcs12))
    parsed = [describe(cert, der) for cert, der in found.certificates]
    if not parsed:
        return Report(findings + _nothing_found(found))
    leaf = end_entity(parsed)
    if leaf is None:
        findings.append(_multiple_end_entities(parsed))
        return Report(findings, None, [p.info for p in parsed])
    chain = sort_chain(leaf, parsed)
    return Report(
        findings + judge(leaf, chain, ctx),
        leaf.info,
        [p.info for p in chain.ordered],
        [p.info for p in chain.intermediates],
    )


def _internal_error() -> Report:
    return Report(
        [
            error(
                Code.INTERNAL_ERROR,
                "We could not check this file because of an error on our side. Please try "
                "again later or contact us.",
            )
        ]
    )


def inspect(
    data: bytes,
    *,
    usage: Usage,
    now: datetime,
    activate_at: datetime | None = None,
    current_sha256: str | None = None,
) -> Report:
    """Read an uploaded certificate file and judge it for AS2; never raises for any input bytes."""
    ctx = Context(
        usage=Usage(usage),
        now=require_aware(now, "now"),
        activate_at=None if activate_at is None else require_aware(activate_at, "activate_at"),
        current_sha256=current_sha256,
    )
    try:
        report = _inspect(bytes(data), ctx)
    except Exception:
        # A partner must always get an answer; a distinct code keeps such bugs visible.
        log.exception("certificate inspection failed")
        return _internal_error()
    report.findings.sort(key=_severity_rank)  # stable: errors, then warnings, then details
    return report
