"""Certificates of our identities (with keys encrypted at rest) and of partners.

Keys are decrypted only to sign a certificate or to build a passphrase-protected
PKCS#12; plaintext keys never reach the database, a log or a response otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from portal.domain import certs
from portal.domain.certs import (
    CertificateError,
    CertificateInfo,
    Report,
    Usage,
    colon_fingerprint,
    sha256_hex,
)
from portal.domain.keys import KeyRing, KeyRingError
from portal.domain.vocab import usage_words
from portal.models import Certificate, Identity, Partner, PendingKey
from portal.services import audit, unique
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError

KEY_SIZES = (2048, 3072, 4096)
MIN_DAYS, MAX_DAYS = 1, 3650
# Format: (media type, whether the file carries the chain too). A .cer holds one certificate.
FORMATS = {
    "pem": ("application/x-pem-file", True),
    "cer": ("application/pkix-cert", False),
    "p7c": ("application/pkcs7-mime", True),
}


@dataclass(frozen=True)
class Stored:
    """A certificate just stored, with the warnings its check raised."""

    certificate: Certificate
    report: Report


def get_certificate(session: Session, certificate_id: int) -> Certificate:
    """The certificate with CERTIFICATE_ID, or NotFoundError."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None:
        raise NotFoundError("No such certificate.")
    return certificate


def find_identity_certificate(session: Session, identity: Identity, sha256: str) -> Certificate:
    """The identity's certificate with this SHA-256 fingerprint (any notation)."""
    try:
        wanted = sha256_hex(certs.normalise_fingerprint(sha256))
    except ValueError:
        raise ServiceError(f"{sha256[:100]} is not a SHA-256 fingerprint.") from None
    found = session.scalars(
        select(Certificate).where(
            Certificate.identity_id == identity.id, Certificate.sha256 == wanted
        )
    ).first()
    if found is None:
        raise NotFoundError(f"Identity {identity.as2_id} has no certificate {wanted}.")
    return found


def identity_certificates(session: Session, identity: Identity) -> list[Certificate]:
    """An identity's certificates, newest first."""
    return _newest_first(session, Certificate.identity_id == identity.id)


def partner_certificates(session: Session, partner: Partner) -> list[Certificate]:
    """A partner's certificates, newest first."""
    return _newest_first(session, Certificate.partner_id == partner.id)


def _newest_first(session: Session, owner: ColumnElement[bool]) -> list[Certificate]:
    stmt = select(Certificate).where(owner)
    return list(
        session.scalars(stmt.order_by(Certificate.created_at.desc(), Certificate.id.desc()))
    )


def open_csrs(session: Session, identity: Identity) -> list[PendingKey]:
    """Certificate requests of the identity still waiting for their signed certificate."""
    return list(
        session.scalars(
            select(PendingKey)
            .where(PendingKey.identity_id == identity.id, PendingKey.completed_at.is_(None))
            .order_by(PendingKey.id.desc())
        )
    )


def get_pending_key(session: Session, identity: Identity, pending_id: int) -> PendingKey:
    """One of the identity's certificate requests, or NotFoundError."""
    pending = session.get(PendingKey, pending_id)
    if pending is None or pending.identity_id != identity.id:
        raise NotFoundError("No such certificate request.")
    return pending


def generate(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    *,
    usage: str,
    key_size: int,
    days: int,
    now: datetime,
) -> Certificate:
    """Make a new key and self-signed certificate for IDENTITY; not in force until scheduled."""
    usage_ = requested_usage(usage)
    _check_generation(key_size, days)
    generated = certs.generate_identity_certificate(
        as2_id=identity.as2_id,
        organisation=identity.organisation,
        usage=usage_,
        now=now,
        key_size=key_size,
        days=days,
    )
    certificate = _store_identity_certificate(
        session,
        keyring,
        identity,
        generated.certificate,
        certs.private_key_to_der(generated.private_key),
        usage=usage_,
        source="generated",
        chain=(),
        actor=actor,
    )
    _audit_new(
        session, actor, certificate, f"Generated a {key_size}-bit {usage_words(usage_)} certificate"
    )
    return certificate


def import_pem(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    *,
    cert_data: bytes,
    key_data: bytes,
    passphrase: bytes | None,
    usage: str,
    now: datetime,
) -> Stored:
    """Import a certificate with its PEM key (optionally encrypted) for IDENTITY."""
    usage_ = requested_usage(usage)
    try:
        keyed = certs.load_pem_bundle(cert_data, key_data, passphrase or None)
    except CertificateError as error:
        raise ServiceError(str(error)) from None
    return _store_import(session, actor, keyring, identity, keyed, usage_, now)


def import_pkcs12(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    *,
    data: bytes,
    passphrase: bytes,
    usage: str,
    now: datetime,
) -> Stored:
    """Import a PKCS#12 file (key, certificate, chain) for IDENTITY."""
    usage_ = requested_usage(usage)
    try:
        keyed = certs.load_pkcs12(data, passphrase)
    except CertificateError as error:
        raise ServiceError(str(error)) from None
    return _store_import(session, actor, keyring, identity, keyed, usage_, now)


def create_csr(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    *,
    usage: str,
    key_size: int,
) -> PendingKey:
    """Make a key and a certificate signing request for a CA; the key waits, encrypted."""
    usage_ = requested_usage(usage)
    _check_generation(key_size, MIN_DAYS)
    pending_key = certs.create_csr(
        as2_id=identity.as2_id, organisation=identity.organisation, usage=usage_, key_size=key_size
    )
    pending = PendingKey(
        identity_id=identity.id,
        usage=str(usage_),
        key_size=key_size,
        csr_pem=pending_key.csr_pem,
        encrypted_private_key=keyring.encrypt(
            certs.private_key_to_der(pending_key.private_key),
            associated_data=_pending_aad(pending_key.csr_pem),
        ),
        created_by_id=actor.user_id,
    )
    session.add(pending)
    session.flush()
    audit.record(
        session,
        actor,
        "identity.csr_created",
        object_type="identity",
        object_id=identity.id,
        summary=f"Created a {key_size}-bit certificate request ({usage_words(usage_)}) "
        f"for {identity.as2_id}",
        details={"pending_key_id": pending.id, "usage": str(usage_), "key_size": key_size},
    )
    return pending


def complete_csr(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    pending: PendingKey,
    *,
    signed_data: bytes,
    now: datetime,
) -> Stored:
    """Store the CA-signed certificate for a pending key, refusing one for another key."""
    if pending.completed_at is not None:
        raise ServiceError("This certificate request was already completed.")
    key = certs.private_key_from_der(
        decrypt_key(keyring, pending.encrypted_private_key, _pending_aad(pending.csr_pem))
    )
    try:
        keyed = certs.match_signed_bundle(key, signed_data)
    except CertificateError as error:
        raise ServiceError(str(error)) from None
    stored = _store_import(
        session, actor, keyring, pending.identity, keyed, Usage(pending.usage), now, source="csr"
    )
    pending.completed_at = now
    pending.certificate_id = stored.certificate.id
    return stored


def public_file(certificate: Certificate, fmt: str) -> tuple[bytes, str, str]:
    """(content, mimetype, file name) of the public certificate in FMT: pem, cer or p7c.

    The .pem and .p7c files carry the stored chain after the certificate; .cer only the
    certificate.
    """
    if fmt not in FORMATS:
        raise NotFoundError(f"Unknown format {fmt[:10]}; use pem, cer or p7c.")
    mimetype, with_chain = FORMATS[fmt]
    chain = chain_ders(certificate) if with_chain else []
    if fmt == "pem":
        content = certs.export_pem(certificate.der, chain)
    elif fmt == "p7c":
        content = certs.export_p7c(certificate.der, chain)
    else:
        content = certs.export_der(certificate.der)
    return content, mimetype, f"{file_stem(certificate)}.{fmt}"


def file_stem(certificate: Certificate) -> str:
    """A server-chosen, safe file name: owner AS2 ID, usage and fingerprint prefix."""
    owner = certificate.identity or certificate.partner
    as2_id = owner.as2_id if owner is not None else "certificate"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in as2_id)[:60]
    return f"{safe}-{certificate.usage}-{certificate.sha256[:16]}"


def _pem_ders(chain_pem: str) -> list[bytes]:
    if not chain_pem.strip():
        return []
    return [
        ca.public_bytes(Encoding.DER) for ca in x509.load_pem_x509_certificates(chain_pem.encode())
    ]


def chain_ders(certificate: Certificate) -> list[bytes]:
    """The stored CA chain of a certificate as DER blobs, its issuer first."""
    return _pem_ders(certificate.chain_pem)


class _StoredChain(Protocol):
    @property
    def chain_pem(self) -> str: ...


def chain_pems(certificate: _StoredChain) -> list[str]:
    """The stored CA chain as one PEM text per certificate, its issuer first (leaf excluded).

    For a partner certificate these are exactly the intermediates it was sent with, without
    the root; for one of ours, the CA certificates that came with it.
    """
    # Stored as the concatenated PEM of validated certificates: split, no need to parse.
    return certs.split_pem_certificates(certificate.chain_pem)


def chain_details(chain_pem: str) -> list[CertificateInfo]:
    """Describe each certificate of a stored chain (subject, issuer, validity, ...)."""
    return [certs.certificate_info(der) for der in _pem_ders(chain_pem)]


def rotate_keys(session: Session, keyring: KeyRing) -> tuple[int, int]:
    """Re-encrypt every stored private key under the newest key: (re-encrypted, total)."""
    rotated = total = 0
    for certificate in session.scalars(
        select(Certificate).where(Certificate.encrypted_private_key.is_not(None))
    ):
        total += 1
        blob = certificate.encrypted_private_key
        assert blob is not None  # noqa: S101  (filtered in the query)
        if keyring.needs_rotation(blob):
            certificate.encrypted_private_key = _reencrypt(
                keyring, blob, certificate_aad(certificate.sha256)
            )
            rotated += 1
    for pending in session.scalars(select(PendingKey)):
        total += 1
        if keyring.needs_rotation(pending.encrypted_private_key):
            pending.encrypted_private_key = _reencrypt(
                keyring, pending.encrypted_private_key, _pending_aad(pending.csr_pem)
            )
            rotated += 1
    session.flush()
    return rotated, total


def certificate_aad(sha256: str) -> bytes:
    """Associated data binding an encrypted key to its certificate row."""
    return b"portal/certificate-key/" + sha256.encode("ascii")


def _pending_aad(csr_pem: str) -> bytes:
    return b"portal/pending-key/" + hashlib.sha256(csr_pem.encode()).hexdigest().encode("ascii")


def decrypt_key(keyring: KeyRing, blob: bytes, aad: bytes) -> bytes:
    """The plaintext of a key blob sealed under KEYRING for AAD; ServiceError if it won't open."""
    try:
        return keyring.decrypt(blob, associated_data=aad)
    except KeyRingError as error:
        raise ServiceError(f"The stored private key cannot be decrypted: {error}") from None


def _reencrypt(keyring: KeyRing, blob: bytes, aad: bytes) -> bytes:
    try:
        return keyring.reencrypt(blob, associated_data=aad)
    except KeyRingError as error:
        raise ServiceError(f"A stored private key cannot be decrypted: {error}") from None


def requested_usage(value: str) -> Usage:
    """The usage a form, an upload or a command asked for; ServiceError if it names none."""
    try:
        return Usage(value)
    except ValueError:
        raise ServiceError("Usage must be signing, encryption or both.", field="usage") from None


def _check_generation(key_size: int, days: int) -> None:
    if key_size not in KEY_SIZES:
        raise ServiceError("Key size must be 2048, 3072 or 4096 bits.", field="key_size")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ServiceError(f"Validity must be {MIN_DAYS} to {MAX_DAYS} days.", field="days")


def _store_import(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    keyed: certs.KeyedCertificate,
    usage: Usage,
    now: datetime,
    source: str = "imported",
) -> Stored:
    """Check an imported certificate like a partner's upload; errors refuse it."""
    bundle = keyed.certificate.pem() + "".join(c.pem() for c in keyed.chain)
    report = certs.inspect(bundle.encode(), usage=usage, now=now)
    if not report.acceptable:
        raise ServiceError(" ".join(f.message for f in report.errors))
    certificate = _store_identity_certificate(
        session,
        keyring,
        identity,
        keyed.certificate,
        certs.private_key_to_der(keyed.private_key),
        usage=usage,
        source=source,
        chain=keyed.chain,
        actor=actor,
    )
    what = "CA-signed certificate" if source == "csr" else "certificate with its key"
    _audit_new(session, actor, certificate, f"Imported a {what} for {usage_words(usage)}")
    return Stored(certificate, report)


def _store_identity_certificate(
    session: Session,
    keyring: KeyRing,
    identity: Identity,
    info: CertificateInfo,
    key_der: bytes,
    *,
    usage: Usage,
    source: str,
    chain: Sequence[CertificateInfo],
    actor: Actor,
) -> Certificate:
    sha256 = sha256_hex(info.fingerprint_sha256)
    certificate = certificate_row(
        info,
        identity_id=identity.id,
        usage=str(usage),
        chain_pem="".join(c.pem() for c in chain),
        source=source,
        encrypted_private_key=keyring.encrypt(key_der, associated_data=certificate_aad(sha256)),
        created_by_id=actor.user_id,
    )
    unique.add_or_conflict(
        session,
        certificate,
        f"Identity {identity.as2_id} already has this certificate for {usage_words(usage)}.",
    )
    return certificate


def certificate_row(info: CertificateInfo, **fields: object) -> Certificate:
    """A Certificate row with the facts of INFO; FIELDS give owner, usage, source and the rest."""
    return Certificate(
        der=info.der,
        sha256=sha256_hex(info.fingerprint_sha256),
        sha1=sha256_hex(info.fingerprint_sha1),
        subject=info.subject,
        issuer=info.issuer,
        serial=info.serial,
        not_before=info.not_before,
        not_after=info.not_after,
        key_type=info.key_type,
        key_size=info.key_size,
        signature_hash=info.signature_hash,
        **fields,
    )


def _audit_new(session: Session, actor: Actor, certificate: Certificate, what: str) -> None:
    identity = certificate.identity
    assert identity is not None  # noqa: S101  (identity certificates only)
    audit.record(
        session,
        actor,
        "certificate.added",
        object_type="identity",
        object_id=identity.id,
        summary=f"{what} for {identity.as2_id}: SHA-256 {colon_fingerprint(certificate.sha256)}",
        details={
            "certificate_id": certificate.id,
            "sha256": certificate.sha256,
            "usage": certificate.usage,
            "source": certificate.source,
            "not_after": certificate.not_after.isoformat(),
        },
    )
