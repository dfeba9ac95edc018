"""Private keys leave the portal only here: as PKCS#12 under a passphrase good enough to
protect them, each export audited (never the passphrase itself).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from portal.domain import certs
from portal.domain.aliases import certificate_alias
from portal.domain.certs import CertificateError, short_fingerprint
from portal.domain.keys import KeyRing
from portal.models import Certificate, Identity
from portal.services import audit, certificates
from portal.services.actor import Actor
from portal.services.errors import ConflictError, NotFoundError, ServiceError

MIN_EXPORT_PASSPHRASE = 8
MAX_EXPORT_PASSPHRASE = 1024
MIN_DISTINCT_CHARACTERS = 5
# Refused whatever their length: Java's keytool default and the first entries of every list.
COMMON_PASSPHRASES = frozenset(
    {
        "changeit", "changeme", "password", "password1", "password123", "passw0rd",
        "12345678", "123456789", "1234567890", "87654321", "qwertyui", "qwertyuiop",
        "iloveyou", "abcd1234", "abcdefgh", "letmein1", "secret123", "trustno1",
    }
)  # fmt: skip


def check_export_passphrase(passphrase: str) -> bytes:
    """PASSPHRASE as UTF-8 if it may protect exported keys; ServiceError (field passphrase)."""
    problem = _passphrase_problem(passphrase)
    if problem is not None:
        raise ServiceError(problem, field="passphrase")
    return passphrase.encode("utf-8")


def _passphrase_problem(passphrase: str) -> str | None:
    if not passphrase:
        return "A passphrase is required: the file holds private keys."
    if len(passphrase) < MIN_EXPORT_PASSPHRASE:
        return f"Use a passphrase of at least {MIN_EXPORT_PASSPHRASE} characters."
    if len(passphrase) > MAX_EXPORT_PASSPHRASE:
        return f"Use a passphrase of at most {MAX_EXPORT_PASSPHRASE} characters."
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in passphrase):
        return "The passphrase may not contain control characters or unpaired surrogates."
    if len(set(passphrase)) < MIN_DISTINCT_CHARACTERS:
        return "That passphrase is too repetitive; use a longer mix of characters."
    if passphrase.strip().lower() in COMMON_PASSPHRASES:
        return "That passphrase is too common (it is on every list attackers try)."
    return None


def export_keystore(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    identity: Identity,
    chosen: Sequence[Certificate],
    *,
    passphrase: str,
    legacy: bool,
    details: dict[str, object],
) -> bytes:
    """CHOSEN certificates of IDENTITY with keys and chains, one PKCS#12; audited.

    Each entry's friendly name is the certificate's alias; DETAILS (how they were chosen)
    go into the audit event, which never holds the passphrase.
    """
    secret = check_export_passphrase(passphrase)
    if not chosen:
        raise NotFoundError(f"Identity {identity.as2_id} has no such certificate.")
    entries = [_keystore_entry(keyring, identity, certificate) for certificate in chosen]
    try:
        data = certs.export_keystore(entries, passphrase=secret, legacy=legacy)
    except CertificateError as error:
        raise ServiceError(str(error)) from None
    cipher = "legacy 3DES" if legacy else "AES-256"
    audit.record(
        session,
        actor,
        "certificate.keystore_exported",
        object_type="identity",
        object_id=identity.id,
        summary=f"Exported {_keys(len(chosen))} of {identity.as2_id} as PKCS#12 ({cipher}): "
        + ", ".join(entry.alias for entry in entries),
        details={
            **details,
            "certificate_ids": [c.id for c in chosen],
            "sha256": [c.sha256 for c in chosen],
            "aliases": [entry.alias for entry in entries],
            "legacy": legacy,
        },
    )
    return data


def _keys(count: int) -> str:
    return "1 key" if count == 1 else f"{count} keys"


def _keystore_entry(
    keyring: KeyRing, identity: Identity, certificate: Certificate
) -> certs.KeystoreEntry:
    """The key, certificate and chain of CERTIFICATE, filed under its alias."""
    blob = certificate.encrypted_private_key
    if blob is None or certificate.identity_id != identity.id:
        raise ConflictError(
            f"Certificate {short_fingerprint(certificate.sha256)} has no private key here."
        )
    key = certs.private_key_from_der(
        certificates.decrypt_key(keyring, blob, certificates.certificate_aad(certificate.sha256))
    )
    return certs.KeystoreEntry(
        alias=certificate_alias(identity.as2_id, certificate.sha256),
        private_key=key,
        certificate_der=certificate.der,
        chain_ders=certificates.chain_ders(certificate),
    )


def export_pkcs12(
    session: Session,
    actor: Actor,
    keyring: KeyRing,
    certificate: Certificate,
    *,
    passphrase: str,
    legacy: bool,
) -> bytes:
    """The certificate with its key and chain as PKCS#12 under PASSPHRASE, named by its alias."""
    identity = certificate.identity
    if certificate.encrypted_private_key is None or identity is None:
        raise ServiceError("Only our own identity certificates have a private key to export.")
    return export_keystore(
        session,
        actor,
        keyring,
        identity,
        [certificate],
        passphrase=passphrase,
        legacy=legacy,
        details={"certificate_id": certificate.id},
    )
