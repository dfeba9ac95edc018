#!/usr/bin/env python3
"""pyas2lib follows the portal: Organization and Partner objects built from /api/v1/config.

pyas2lib (https://github.com/abhishek-ram/pyas2-lib) gives an `Organization` one signing
key and one decryption key, and a `Partner` one verification certificate and one
encryption certificate. `Message.parse()` finds them through callbacks:
`find_org_cb(as2_to)` and `find_partner_cb(as2_from)`, or together
`find_org_partner_cb(as2_to, as2_from)` returning `(Organization, Partner)`.

The portal's rule for inbound traffic is wider than one certificate: accept under every
certificate in `accept` (the active one, the previous one during the overlap, and every
approved scheduled one, since a partner may switch a few minutes early). So `receive()`
below parses the message once per candidate pair (our decryption key x the partner's
verification certificate, the `send` ones first) and stops at the first that works; it
only retries when the failure is one a different certificate could cure (decryption or
signature). Outbound, `outbound()` signs with our `send` signing key and encrypts to the
partner's `send` encryption certificate.

The document is read through ConfigClient (examples/poll_config.py) with ETag/304, so
asking for it on every message costs one 304 when nothing changed.

Private keys never come from /api/v1/config. This example reads one PKCS#12 file per
certificate, named `<alias>.p12`, from --keys (all under one passphrase). Fill that folder
with the portal's keystore export, one call per certificate (scope keys:export):

    curl -H "Authorization: Bearer $KEYS_TOKEN" -H 'Content-Type: application/json' \\
      -d '{"passphrase": "...", "certificate": "<fingerprint_sha256>"}' \\
      https://portal.example.com/api/v1/identities/<as2_id>/keystore > keys/<alias>.p12

Usage (needs `pip install pyas2lib`; see docs/engines.md about oscrypto and OpenSSL 3.0.10+):

    export PORTAL_TOKEN=cep_...
    python3 examples/pyas2lib_callbacks.py --url https://portal.example.com \\
        --keys keys/ --passphrase-file pass.txt --show OURAS2 PARTNERAS2
    python3 examples/pyas2lib_callbacks.py --url ... --keys keys/ --passphrase-file pass.txt \\
        --receive message.as2      # raw HTTP headers, blank line, body
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from poll_config import ConfigClient, token_reader  # the sibling example

# Failures another certificate could cure; anything else (unknown partner, duplicate,
# unsigned where signing is required) is final.
RETRY_ON = ("DecryptionError", "IntegrityError")

Selector = Callable[[dict[str, Any]], list[dict[str, Any]]]


def accept_set(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The certificates to accept inbound traffic under: the portal's `accept`, send first."""
    send = state["send"]
    rest = [c for c in state["accept"] if not send or c["alias"] != send["alias"]]
    return [send, *rest] if send else rest


@dataclass
class DirectoryKeys:
    """Private keys as `<alias>.p12` files in FOLDER, all under one passphrase."""

    folder: Path
    passphrase: str

    def __call__(self, alias: str) -> tuple[bytes, str] | None:
        path = self.folder / f"{alias}.p12"
        return (path.read_bytes(), self.passphrase) if path.exists() else None


@dataclass
class Received:
    """What receive() found: pyas2lib's status, exception and MDN, and what it tried."""

    status: str
    exception: BaseException | None
    mdn: Any
    message: Any
    attempts: int


@dataclass
class PortalAS2:
    """Organizations and partners for pyas2lib, from the portal's config document."""

    client: ConfigClient
    keys: Callable[[str], tuple[bytes, str] | None]
    # Engine settings the portal does not hold (sign, encrypt, mdn_mode, ...), per AS2 ID.
    partner_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbound: Selector = accept_set
    _organizations: dict[tuple[str, str | None, str | None], Any] = field(default_factory=dict)

    def document(self, at: str | None = None) -> dict[str, Any]:
        """The config document now, or at AT (ISO 8601 with Z)."""
        return self.client.get(at=at).document

    # --- looking owners up -------------------------------------------------------------

    @staticmethod
    def _entry(document: dict[str, Any], kind: str, as2_id: str) -> dict[str, Any] | None:
        return next((o for o in document[kind] if o["as2_id"] == as2_id), None)

    def organization(
        self, document: dict[str, Any], as2_id: str, decrypt: dict[str, Any] | None = None
    ) -> Any:
        """Our identity AS2_ID: signs with `send`, decrypts with DECRYPT (default `send`)."""
        from pyas2lib import Organization

        entry = self._entry(document, "identities", as2_id)
        if entry is None:
            return None
        signing = entry["certificates"]["signing"]["send"]
        decrypt = decrypt or entry["certificates"]["encryption"]["send"]
        key = (as2_id, signing and signing["alias"], decrypt and decrypt["alias"])
        if key not in self._organizations:
            sign_key = self.keys(signing["alias"]) if signing else None
            decrypt_key = self.keys(decrypt["alias"]) if decrypt else None
            self._organizations[key] = Organization(
                as2_name=as2_id,
                sign_key=sign_key[0] if sign_key else None,
                sign_key_pass=sign_key[1] if sign_key else None,
                decrypt_key=decrypt_key[0] if decrypt_key else None,
                decrypt_key_pass=decrypt_key[1] if decrypt_key else None,
            )
        return self._organizations[key]

    def partner(
        self, document: dict[str, Any], as2_id: str, verify: dict[str, Any] | None = None
    ) -> Any:
        """Partner AS2_ID: verified with VERIFY (default `send`), encrypted to `send`."""
        from pyas2lib import Partner

        entry = self._entry(document, "partners", as2_id)
        if entry is None:
            return None
        verify = verify or entry["certificates"]["signing"]["send"]
        encrypt = entry["certificates"]["encryption"]["send"]
        return Partner(
            as2_name=as2_id,
            verify_cert=verify["pem"].encode() if verify else None,
            verify_cert_ca=_chain(verify),
            encrypt_cert=encrypt["pem"].encode() if encrypt else None,
            encrypt_cert_ca=_chain(encrypt),
            **self.partner_settings.get(as2_id, {}),
        )  # fmt: skip

    def candidates(self, document: dict[str, Any], org_id: str, partner_id: str) -> list[Any]:
        """(Organization, Partner) pairs to try for an inbound message, likeliest first."""
        ours = self._entry(document, "identities", org_id)
        theirs = self._entry(document, "partners", partner_id)
        if ours is None or theirs is None:
            return [(None, None)]
        keys = [
            c for c in self.inbound(ours["certificates"]["encryption"]) if self.keys(c["alias"])
        ]
        certs = self.inbound(theirs["certificates"]["signing"])
        return [
            (self.organization(document, org_id, key), self.partner(document, partner_id, cert))
            for key, cert in itertools.product(keys or [None], certs or [None])
        ]

    # --- the two directions ------------------------------------------------------------

    def receive(self, raw: bytes, at: str | None = None) -> Received:
        """Parse an inbound message (HTTP headers, blank line, body) against the accept set."""
        from pyas2lib import Message

        document = self.document(at)
        pairs: list[Any] = []
        attempt = 0

        def find_org_partner(org_id: str, partner_id: str) -> Any:
            if not pairs:
                pairs.extend(self.candidates(document, org_id, partner_id))
            return pairs[attempt]

        while True:
            message = Message()
            status, (exception, _trace), mdn = message.parse(
                raw, find_org_partner_cb=find_org_partner
            )
            cured_by_another = type(exception).__name__ in RETRY_ON
            if exception is None or not cured_by_another or attempt + 1 >= len(pairs):
                return Received(status, exception, mdn, message, attempt + 1)
            attempt += 1

    def outbound(self, org_id: str, partner_id: str, at: str | None = None) -> Any:
        """A pyas2lib Message from our identity to the partner; call .build(data) on it."""
        from pyas2lib import Message

        document = self.document(at)
        return Message(
            sender=self.organization(document, org_id),
            receiver=self.partner(document, partner_id),
        )


def _chain(certificate: dict[str, Any] | None) -> bytes | None:
    """The intermediates published with CERTIFICATE, for pyas2lib's *_cert_ca."""
    if not certificate or not certificate["chain"]:
        return None
    return "".join(certificate["chain"]).encode()


def describe(document: dict[str, Any], org_id: str, partner_id: str) -> list[str]:
    """What an engine would use, as lines of text."""
    lines = []
    for kind, as2_id in (("identities", org_id), ("partners", partner_id)):
        entry = PortalAS2._entry(document, kind, as2_id)
        if entry is None:
            lines.append(f"{kind[:-1]} {as2_id}: unknown")
            continue
        for usage, state in entry["certificates"].items():
            send = state["send"]["alias"] if state["send"] else "-"
            accept = ", ".join(c["alias"] for c in accept_set(state)) or "-"
            lines.append(f"{as2_id} {usage}: send {send}; accept {accept}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the portal's base URL")
    parser.add_argument("--token-file", help="file holding the token (default: $PORTAL_TOKEN)")
    parser.add_argument("--keys", type=Path, default=Path("keys"), help="folder of <alias>.p12")
    parser.add_argument("--passphrase-file", type=Path, help="passphrase of the .p12 files")
    parser.add_argument("--at", help="answer for this moment (ISO 8601 with Z)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--show", nargs=2, metavar=("OUR_AS2_ID", "PARTNER_AS2_ID"))
    action.add_argument("--receive", type=Path, help="a raw inbound message to parse")
    args = parser.parse_args(argv)
    passphrase = args.passphrase_file.read_text().strip() if args.passphrase_file else ""
    portal = PortalAS2(
        ConfigClient(args.url, token_reader(args.token_file)),
        DirectoryKeys(args.keys, passphrase),
    )
    if args.show:
        print("\n".join(describe(portal.document(args.at), *args.show)))
        return 0
    received = portal.receive(args.receive.read_bytes(), at=args.at)
    print(f"{received.status} after {received.attempts} attempt(s)")
    if received.exception is not None:
        print(f"error: {received.exception}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
