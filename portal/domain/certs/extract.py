"""What is in an upload: PEM blocks, PKCS#7 bundles, DER certificates, requests, private keys."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from portal.domain.certs.der import (
    der_serial,
    first_element,
    is_encrypted_pkcs8,
    is_pfx,
    is_signed_data,
)
from portal.domain.certs.describe import load_der_certificate, non_positive_serial_finding
from portal.domain.certs.model import CRYPTO_ERRORS, Code, Finding, error, warning

MAX_INPUT_BYTES: Final = 64 * 1024

PEM_BEGIN: Final = re.compile(rb"-----BEGIN ([A-Z0-9#][A-Z0-9# ]{0,63})-----")
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


def too_large(size: int) -> Finding:
    """The error for an upload over MAX_INPUT_BYTES."""
    return error(
        Code.TOO_LARGE,
        f"The file is {size // 1024} KB, but a certificate file is at most "
        f"{MAX_INPUT_BYTES // 1024} KB. Please send only your public certificate "
        "(.cer, .crt, .pem or .p7b).",
        size=size // 1024,
        limit=MAX_INPUT_BYTES // 1024,
    )


def damaged(number: int) -> Finding:
    """The error for the NUMBERth certificate of a file, damaged."""
    return error(Code.UNREADABLE, _MSG_DAMAGED.format(n=number), number=number)


@dataclass
class Extraction:
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
            self.add(load_der_certificate(der), der)
        except CRYPTO_ERRORS:
            serial = der_serial(der)
            # cryptography announces it will refuse such serials: keep the specific finding.
            if serial is not None and serial <= 0:
                self.findings.append(non_positive_serial_finding())
            else:
                self.findings.append(damaged(number))
            return False
        return True


def _pem_blocks(text: bytes) -> list[tuple[str, bytes | None]]:
    """Return (label, body) for each PEM block; body None when its END line is missing."""
    blocks: list[tuple[str, bytes | None]] = []
    pos = 0
    while len(blocks) < _MAX_PEM_BLOCKS:
        begin = PEM_BEGIN.search(text, pos)
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


def _add_pkcs7(der: bytes, found: Extraction, number: int) -> None:
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(der)
    except CRYPTO_ERRORS:
        if is_signed_data(der):
            found.recognised = True  # a PKCS#7 file, just without certificates
        else:
            found.findings.append(damaged(number))
        return
    found.recognised = True
    for cert in certificates:
        found.add(cert, cert.public_bytes(serialization.Encoding.DER))


def _handle_pem_block(label: str, body: bytes | None, found: Extraction, number: int) -> None:
    interesting = label in _CERT_LABELS or label in _PKCS7_LABELS
    if body is None:
        if interesting:
            found.findings.append(
                error(Code.UNREADABLE, _MSG_TRUNCATED.format(label=label), label=label)
            )
        return
    found.recognised = True
    if label in _CSR_LABELS:
        found.request = True
    if not interesting:
        return
    der = _decode_pem_body(body)
    if der is None:
        found.findings.append(damaged(number))
    elif label in _PKCS7_LABELS:
        _add_pkcs7(der, found, number)
    else:
        # A TRUSTED CERTIFICATE carries OpenSSL trust settings after the certificate.
        found.add_der(first_element(der) if label == "TRUSTED CERTIFICATE" else der, number)


def _extract_pem(text: bytes, found: Extraction) -> None:
    number = 0
    for label, body in _pem_blocks(text):
        if label in _CERT_LABELS or label in _PKCS7_LABELS:
            number += 1
        _handle_pem_block(label, body, found, number)


def _is_der_private_key(data: bytes) -> bool:
    if is_encrypted_pkcs8(data):
        return True
    try:
        serialization.load_der_private_key(data, None)
    except TypeError:
        return True  # "password was not given but private key is encrypted"
    except UnsupportedAlgorithm:
        return True  # a key, only of a kind or protection we cannot load
    except CRYPTO_ERRORS:
        return False
    return True


def _extract_der(data: bytes, found: Extraction) -> None:
    if is_pfx(data):
        # Recognised by structure alone and never opened: a PFX dictates its own key
        # derivation iteration counts, so opening one lets an anonymous upload burn
        # unbounded CPU. PFX files exist to carry private keys; that is all we need.
        found.recognised = found.private_key = found.pkcs12 = True
        return
    element = first_element(data)
    if _try_der_certificate(element, found):
        _note_trailing(data[len(element) :], found)
    elif not found.recognised and any(_is_der_private_key(d) for d in {data, element}):
        found.recognised = found.private_key = True


def _note_trailing(trailing: bytes, found: Extraction) -> None:
    # Padding with NULs or line breaks is common and harmless; other bytes are worth a word.
    if trailing.strip(b"\x00\r\n\t "):
        found.findings.append(
            warning(
                Code.TRAILING_DATA,
                f"The file has {len(trailing)} extra bytes after the certificate; they were "
                "ignored. If the certificate shown is not the one you meant, please export it "
                "again.",
                count=len(trailing),
            )
        )


def _try_der_certificate(der: bytes, found: Extraction) -> bool:
    """Read der as a certificate, else as a PKCS#7 bundle or a CSR; whether certificates came."""
    try:
        found.add(load_der_certificate(der), der)
    except CRYPTO_ERRORS:
        if is_signed_data(der):
            _add_pkcs7(der, found, 1)
            return bool(found.certificates)
        found.request = found.recognised = _is_der_csr(der)
        return False
    found.recognised = True
    return True


def _is_der_csr(der: bytes) -> bool:
    try:
        x509.load_der_x509_csr(der)
    except CRYPTO_ERRORS:
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


def extract(data: bytes) -> Extraction:
    """Find certificates, private keys and requests in an upload of any supported format."""
    found = Extraction()
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
