"""Certificates for AS2: read and judge uploads, generate, import and export.

Plain domain code: no Flask, no database and no clock. Callers pass the time in,
so every judgement is reproducible and testable.

The rest of the portal imports this package (`from portal.domain import certs`), never
its modules. Inside, a module imports only modules above it in this list, never one below:

    model       errors, usages, codes, findings, CertificateInfo, Report
    text        cleaning text from certificates, formatting times, fingerprints
    der         recognising DER structures by their first bytes
    describe    reading one certificate: names, extensions, key, signature
    chain       picking the sender's certificate among several, ordering the rest
    extract     what is in an upload: PEM blocks, PKCS#7, DER, requests, private keys
    details     the informational findings read back to the sender
    strength    key types, RSA sizes, curves, signature hashes
    rules       the other checks, and the judgement that runs them all in order
    inspection  inspect(): extract, pick, judge, sort
    generate    new keys, self-signed certificates and CSRs
    loading     importing PEM/DER pairs and PKCS#12, matching CA-signed certificates
    export      PEM, DER, PKCS#7 and PKCS#12 out
    keystore    several keys in one PKCS#12, each under its alias

From outside it, a module imports only portal.domain.vocab (model re-exports its Usage).
"""

from __future__ import annotations

from portal.domain.certs.describe import certificate_info, public_key_der
from portal.domain.certs.export import (
    armour_pem,
    export_der,
    export_p7c,
    export_pem,
    export_pkcs12,
    private_key_to_der,
    split_pem_certificates,
)
from portal.domain.certs.extract import MAX_INPUT_BYTES
from portal.domain.certs.generate import (
    ALLOWED_RSA_SIZES,
    Generated,
    PendingKey,
    create_csr,
    generate_identity_certificate,
)
from portal.domain.certs.inspection import inspect
from portal.domain.certs.keystore import KeystoreEntry, export_keystore
from portal.domain.certs.loading import (
    KeyedCertificate,
    load_pem_bundle,
    load_pkcs12,
    match_signed_bundle,
    match_signed_certificate,
    private_key_from_der,
)
from portal.domain.certs.model import (
    CertificateError,
    CertificateInfo,
    Code,
    Finding,
    PrivateKey,
    Report,
    Severity,
    Usage,
)
from portal.domain.certs.text import (
    clean_text,
    colon_fingerprint,
    normalise_fingerprint,
    sha256_hex,
    short_fingerprint,
)

__all__ = [
    "ALLOWED_RSA_SIZES",
    "MAX_INPUT_BYTES",
    "CertificateError",
    "CertificateInfo",
    "Code",
    "Finding",
    "Generated",
    "KeyedCertificate",
    "KeystoreEntry",
    "PendingKey",
    "PrivateKey",
    "Report",
    "Severity",
    "Usage",
    "armour_pem",
    "certificate_info",
    "clean_text",
    "colon_fingerprint",
    "create_csr",
    "export_der",
    "export_keystore",
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
    "public_key_der",
    "sha256_hex",
    "short_fingerprint",
    "split_pem_certificates",
]
