"""What the export directory for AS2 engines holds: file paths, contents and modes.

Planning is pure: `plan_files` turns the config document (portal.services.config_export,
the one GET /api/v1/config serves) and, optionally, PKCS#12 keystores by alias into a
list of files. `keystores` makes those keystores from our stored keys. Writing them to
disk, atomically and only when something changed, is portal.exporter's job.

Layout, relative to the export directory (production at the top, every other
environment under a folder of its name, so one AS2 ID may exist in both):

    manifest.json                                  the config document
    version                                        its version (the API's ETag)
    [test/]identities/<as2 id>/<usage>/send.pem    certificate, then its chain
    [test/]identities/<as2 id>/<usage>/send.cer    the certificate alone, DER
    [test/]identities/<as2 id>/<usage>/send.p12    key, certificate, chain (with a passphrase)
    [test/]identities/<as2 id>/<usage>/accept-<alias>.pem|.cer|.p12
    [test/]partners/<as2 id>/<usage>/send.pem|.cer, accept-<alias>.pem|.cer
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain import certs
from portal.domain.aliases import certificate_alias
from portal.domain.certs import sha256_hex
from portal.domain.keys import KeyRing, KeyRingError
from portal.domain.vocab import Environment
from portal.models import Certificate
from portal.services import audit
from portal.services.actor import Actor
from portal.services.certificates import certificate_aad, chain_ders
from portal.services.config_export import ConfigDocument
from portal.services.errors import ServiceError
from portal.services.key_export import check_export_passphrase

PUBLIC_MODE = 0o644
KEY_MODE = 0o600
LAYOUT = 1  # bumped when the layout changes, so every export is rewritten once
_KEPT = re.compile(r"[A-Za-z0-9._@+-]")
_MAX_NAME = 120  # characters of a file name made from an AS2 ID, before its hash suffix


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: a relative POSIX path, its bytes and its mode."""

    path: str
    data: bytes
    mode: int = PUBLIC_MODE


def export_version(document_version: str, *, with_keys: bool) -> str:
    """The version of an export: the document's, the layout's and whether keys are in it."""
    text = f"layout {LAYOUT}\nkeys {'yes' if with_keys else 'no'}\n{document_version}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase the key exports would refuse (the message never shows it)."""
    try:
        check_export_passphrase(passphrase)
    except ServiceError as refused:
        raise ServiceError(f"PORTAL_EXPORT_KEY_PASSPHRASE: {refused.message}") from None


def safe_name(as2_id: str) -> str:
    """AS2_ID as one readable, safe file name; different IDs never give the same name.

    Letters, digits and `._@+-` stay; every other byte becomes %XX (so `/`, NUL, control
    characters and `%` itself cannot appear), and a leading dot is written %2E, so the
    name is never `.`, `..` or hidden. Very long results are cut and end in a hash.
    """
    encoded = "".join(
        char if _KEPT.fullmatch(char) else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in as2_id
    )
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if not encoded:
        return "%00"  # an empty AS2 ID cannot be stored; never an empty file name
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(as2_id.encode()).hexdigest()[:16]
        encoded = f"{encoded[:_MAX_NAME]}~{digest}"
    return encoded


def owner_folder(kind: str, environment: str, as2_id: str) -> str:
    """The folder of an identity or partner (KIND: identities, partners) in the layout."""
    prefix = "" if environment == Environment.PRODUCTION else f"{safe_name(environment)}/"
    return f"{prefix}{kind}/{safe_name(as2_id)}"


def plan_files(
    document: ConfigDocument, keystores: Mapping[str, bytes] | None = None
) -> list[ExportFile]:
    """Every file of the export of DOCUMENT; KEYSTORES (PKCS#12 by alias) add our keys."""
    body = document.body
    files = [
        ExportFile("manifest.json", document.to_json() + b"\n"),  # as the API sends
        ExportFile("version", f"{document.version}\n".encode()),
    ]
    owners: dict[str, str] = {}
    for kind, keys in (("identities", keystores or {}), ("partners", {})):
        for entry in body[kind]:
            folder = owner_folder(kind, entry["environment"], entry["as2_id"])
            _claim(owners, folder, entry)
            files.extend(_owner_files(folder, entry["certificates"], keys))
    return files


def _claim(owners: dict[str, str], folder: str, entry: dict[str, Any]) -> None:
    """Refuse a second owner for FOLDER (compared without case, as some file systems do)."""
    key = folder.casefold()
    label = f"{entry['as2_id']} ({entry['environment']})"
    if key in owners:
        raise ServiceError(
            f"{owners[key]} and {label} would share the folder {folder}; "
            "the export directory cannot hold both."
        )
    owners[key] = label


def _owner_files(
    folder: str, usages: dict[str, dict[str, Any]], keys: Mapping[str, bytes]
) -> Iterator[ExportFile]:
    for usage, state in usages.items():
        base = f"{folder}/{safe_name(usage)}"
        if state["send"] is not None:
            yield from _certificate_files(f"{base}/send", state["send"], keys)
        for certificate in state["accept"]:
            stem = f"{base}/accept-{certificate['alias']}"
            yield from _certificate_files(stem, certificate, keys)


def _certificate_files(
    stem: str, certificate: dict[str, Any], keys: Mapping[str, bytes]
) -> Iterator[ExportFile]:
    pem: str = certificate["pem"]
    chain = "".join(certificate["chain"])
    yield ExportFile(f"{stem}.pem", (pem + chain).encode("ascii"))
    leaf = x509.load_pem_x509_certificate(pem.encode("ascii"))
    yield ExportFile(f"{stem}.cer", leaf.public_bytes(Encoding.DER))
    keystore = keys.get(certificate["alias"])
    if keystore is not None:
        yield ExportFile(f"{stem}.p12", keystore, KEY_MODE)


def keystores(
    session: Session, keyring: KeyRing, document: ConfigDocument, *, passphrase: str
) -> dict[str, bytes]:
    """PKCS#12 (AES-256, friendly name = alias) of each identity certificate the export names."""
    check_passphrase(passphrase)
    wanted = {
        certificate["alias"]: sha256_hex(certificate["fingerprint_sha256"])
        for entry in document.body["identities"]
        for state in entry["certificates"].values()
        for certificate in [state["send"], *state["accept"]]
        if certificate is not None
    }
    rows = session.scalars(
        select(Certificate).where(
            Certificate.identity_id.is_not(None),
            Certificate.encrypted_private_key.is_not(None),
            Certificate.sha256.in_(sorted(set(wanted.values()))),
        )
    )
    made: dict[str, bytes] = {}
    for row in rows:
        assert row.identity is not None  # noqa: S101  (selected above)
        alias = certificate_alias(row.identity.as2_id, row.sha256)
        if wanted.get(alias) == row.sha256 and alias not in made:
            made[alias] = _keystore(keyring, row, alias, passphrase)
    return made


def _keystore(keyring: KeyRing, row: Certificate, alias: str, passphrase: str) -> bytes:
    assert row.encrypted_private_key is not None  # noqa: S101  (selected with a key)
    try:
        key_der = keyring.decrypt(
            row.encrypted_private_key, associated_data=certificate_aad(row.sha256)
        )
    except KeyRingError as error:
        raise ServiceError(f"The private key of {alias} could not be decrypted: {error}") from None
    try:
        return certs.export_pkcs12(
            private_key=certs.private_key_from_der(key_der),
            certificate_der=row.der,
            chain_ders=chain_ders(row),
            passphrase=passphrase.encode(),
            friendly_name=alias.encode(),
        )
    except certs.CertificateError as error:
        raise ServiceError(f"The keystore of {alias} could not be written: {error}") from None


def record_keys_written(
    session: Session, actor: Actor, *, keys: int, version: str, folder: str
) -> None:
    """Audit that private keys were written to the export directory (never the passphrase)."""
    audit.record(
        session,
        actor,
        "export.keys_written",
        object_type="export",
        object_id="directory",
        summary=f"Wrote {keys} private keys as PKCS#12 to the export directory {folder}",
        details={"keys": keys, "version": version, "folder": folder},
    )
