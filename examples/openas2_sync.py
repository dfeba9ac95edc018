#!/usr/bin/env python3
"""Bring an OpenAS2 keystore and partnerships.xml in line with the portal's config document.

OpenAS2 keeps every certificate in one PKCS#12 keystore under an alias, and names the
alias to use per partner in partnerships.xml: `x509_alias`, and, for inbound messages
only, one `x509_alias_fallback` it tries when decryption or signature verification with
`x509_alias` fails. The portal gives every certificate a stable `alias`, so:

1. every certificate in `send` or `accept` goes into the keystore under its alias
   (`keytool -importcert -alias <alias>`; for our own identities the private key too,
   `keytool -importkeystore -srcalias <alias>` from `<alias>.p12` in --keys, as the
   portal's keystore export writes it, friendly name = alias);
2. each `<partner>` whose `as2_id` is in the document gets `x509_alias` = the alias of
   `send` and `x509_alias_fallback` = the other accepted certificate nearest in time
   (the scheduled one before a switch, the previous one after it), or loses the
   attribute when there is none.

OpenAS2 has one alias per partner for both usages: the fallback serves inbound
decryption (our identity, so the `encryption` usage decides) and inbound signature
verification (a partner, so `signing` decides). The script warns when an owner's signing
and encryption certificates differ.

Both files are rewritten through a temporary copy and one rename, and only when
something changed; OpenAS2 notices the new modification time on its next poll
(`interval` of the certificates and partnerships factories in config.xml).

Usage:

    python3 examples/poll_config.py --url ... --out state/ --once
    python3 examples/openas2_sync.py --config state/config.json \\
        --keystore /opt/openas2/config/as2_certs.p12 --storepass-file storepass.txt \\
        --partnerships /opt/openas2/config/partnerships.xml --keys keys/ --dry-run

--config also takes `manifest.json` of `portal export --dir` or the output of
`portal config-export --json`. --dry-run prints the keytool commands and the
partnership changes without touching anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Aliases the portal hands out end in 16 hex digits of the SHA-256 fingerprint.
PORTAL_ALIAS = re.compile(r"-[0-9a-f]{16}$")
# Which usage decides the fallback: the one OpenAS2 tries a fallback for (inbound only).
FALLBACK_USAGE = {"identities": "encryption", "partners": "signing"}


@dataclass
class Entry:
    """One keystore entry to have: alias, certificate PEM, and whether it is ours (a key)."""

    alias: str
    pem: str
    ours: bool


@dataclass
class Plan:
    """What the document asks of OpenAS2."""

    entries: dict[str, Entry] = field(default_factory=dict)
    aliases: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def owners(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("identities", "partners"):
        for owner in document.get(kind, []):
            yield kind, owner


def fallback(state: dict[str, Any], at: datetime) -> dict[str, Any] | None:
    """The accepted certificate besides `send` nearest in time to AT.

    A scheduled certificate counts from its activate_at (a partner switching early),
    the previous one from the moment it was replaced (a partner switching late).
    """
    send = state["send"]
    moments: list[tuple[float, dict[str, Any]]] = []
    for certificate in state["scheduled"]:
        moments.append(
            (abs((parse_time(certificate["activate_at"]) - at).total_seconds()), certificate)
        )
    if state["previous"] is not None and send is not None and send["activate_at"]:
        replaced = parse_time(send["activate_at"])
        moments.append((abs((replaced - at).total_seconds()), state["previous"]))
    moments = [m for m in moments if send is None or m[1]["alias"] != send["alias"]]
    return min(moments, key=lambda m: m[0])[1] if moments else None


def plan(document: dict[str, Any]) -> Plan:
    """Keystore entries and partnership aliases for DOCUMENT."""
    result = Plan()
    at = parse_time(document["generated_at"])
    for kind, owner in owners(document):
        for state in owner["certificates"].values():
            for certificate in [state["send"], *state["accept"]]:
                if certificate is not None:
                    result.entries[certificate["alias"]] = Entry(
                        certificate["alias"], certificate["pem"], kind == "identities"
                    )
        decisive = owner["certificates"][FALLBACK_USAGE[kind]]
        send = decisive["send"]
        if send is None and not decisive["accept"]:
            continue  # no certificate at all: leave the partner's attributes alone
        if send is None:
            send = decisive["accept"][0]  # nothing active yet: the first to come
            decisive = {**decisive, "send": send}
        other = fallback(decisive, at)
        result.aliases[owner["as2_id"]] = (send and send["alias"], other and other["alias"])
        sends = {
            u: s["send"]["alias"] if s["send"] else None for u, s in owner["certificates"].items()
        }
        if len(set(sends.values())) > 1:
            result.warnings.append(
                f"{owner['as2_id']}: signing and encryption certificates differ; OpenAS2 uses one "
                f"alias per partner, so x509_alias follows {FALLBACK_USAGE[kind]} ({sends})"
            )
    return result


# --- the keystore ------------------------------------------------------------------------


@dataclass
class Keytool:
    """keytool against one PKCS#12 keystore, the password read from a file."""

    keystore: Path
    storepass_file: Path
    keys: Path | None = None
    keys_passphrase_file: Path | None = None
    program: str = "keytool"
    dry_run: bool = False
    printed: list[str] = field(default_factory=list)

    def base(self, keystore: Path) -> list[str]:
        return [
            "-keystore", str(keystore), "-storetype", "PKCS12",
            "-storepass:file", str(self.storepass_file),
        ]  # fmt: skip

    def run(self, arguments: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.program, *arguments]
        self.printed.append(shlex.join(command))
        if self.dry_run:
            return subprocess.CompletedProcess(command, 0, "", "")
        return subprocess.run(command, capture_output=True, text=True, check=check)  # noqa: S603

    def aliases(self) -> set[str]:
        """The aliases in the keystore now (none if it does not exist yet)."""
        if not self.keystore.exists():
            return set()
        command = [self.program, "-list", *self.base(self.keystore)]
        listing = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
        return _listed_aliases(listing.stdout)

    def sync(self, wanted: dict[str, Entry], *, prune: bool) -> list[str]:
        """Add what is missing (and with PRUNE remove stale portal aliases); what changed."""
        present = self.aliases()
        missing = [e for alias, e in sorted(wanted.items()) if alias not in present]
        stale = sorted(a for a in present - wanted.keys() if prune and PORTAL_ALIAS.search(a))
        if not missing and not stale:
            return []
        with tempfile.TemporaryDirectory(dir=self.keystore.parent) as work:
            copy = Path(work) / self.keystore.name
            if self.keystore.exists():
                shutil.copy2(self.keystore, copy)
            changed = [self._add(copy, entry, Path(work)) for entry in missing]
            for alias in stale:
                self.run(["-delete", "-alias", alias, *self.base(copy)])
                changed.append(f"removed {alias}")
            if not self.dry_run:
                os.replace(copy, self.keystore)
        return changed

    def _source_alias(self, source: Path, alias: str) -> str:
        """The entry to take from SOURCE: ALIAS, or its only entry under another name.

        The portal's keystore export names each key after its alias; a PKCS#12 saved from
        elsewhere (the staff page names it after the AS2 ID) holds a single entry.
        """
        if self.dry_run:
            return alias
        command = [
            self.program,
            "-list",
            "-keystore",
            str(source),
            "-storetype",
            "PKCS12",
            "-storepass:file",
            str(self.keys_passphrase_file or self.storepass_file),
        ]
        listing = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
        found = _listed_aliases(listing.stdout)
        return alias if alias in found or len(found) != 1 else found.pop()

    def _add(self, keystore: Path, entry: Entry, work: Path) -> str:
        source = self.keys / f"{entry.alias}.p12" if self.keys else None
        if entry.ours and source is not None and source.exists():
            self.run([
                "-importkeystore", "-noprompt",
                "-srckeystore", str(source), "-srcstoretype", "PKCS12",
                "-srcstorepass:file", str(self.keys_passphrase_file or self.storepass_file),
                "-srcalias", self._source_alias(source, entry.alias), "-destalias", entry.alias,
                "-destkeystore", str(keystore), "-deststoretype", "PKCS12",
                "-deststorepass:file", str(self.storepass_file),
            ])  # fmt: skip
            return f"added {entry.alias} (key and certificate)"
        pem = work / f"{entry.alias}.pem"
        pem.write_text(entry.pem, encoding="ascii")
        self.run(["-importcert", "-noprompt", "-alias", entry.alias, "-file", str(pem),
                  *self.base(keystore)])  # fmt: skip
        note = " (no key file: OpenAS2 cannot sign or decrypt with it)" if entry.ours else ""
        return f"added {entry.alias} (certificate){note}"


def _listed_aliases(listing: str) -> set[str]:
    """Aliases in `keytool -list` output ("alias, date, entryType," lines)."""
    return {
        line.split(",", 1)[0].strip()
        for line in listing.splitlines()
        if line.rstrip().endswith(("trustedCertEntry,", "PrivateKeyEntry,"))
    }


# --- partnerships.xml --------------------------------------------------------------------


def update_partnerships(
    path: Path, aliases: dict[str, tuple[str | None, str | None]], *, dry_run: bool
) -> tuple[list[str], list[str]]:
    """Set x509_alias / x509_alias_fallback on matching <partner> elements.

    Returns (changes, warnings). Comments and attribute order are kept.
    """
    # The operator's own configuration file, not untrusted input.
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))  # noqa: S314
    tree = ET.parse(path, parser)  # noqa: S314
    root = tree.getroot()
    changes: list[str] = []
    warnings: list[str] = []
    for partner in root.iter("partner"):
        as2_id = partner.get("as2_id")
        if as2_id not in aliases:
            continue
        alias, other = aliases[as2_id]
        for attribute, value in (("x509_alias", alias), ("x509_alias_fallback", other)):
            if partner.get(attribute) == value:
                continue
            changes.append(
                f"{partner.get('name')}: {attribute} {partner.get(attribute)} -> {value}"
            )
            if value is None:
                del partner.attrib[attribute]
            else:
                partner.set(attribute, value)
    for partnership in root.iter("partnership"):
        for side in ("sender", "receiver"):
            node = partnership.find(side)
            if node is not None and "x509_alias" in node.attrib:
                warnings.append(
                    f"partnership {partnership.get('name')}: <{side}> sets its own x509_alias, "
                    "which overrides the partner's; remove it to follow the portal"
                )
    if changes and not dry_run:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(handle)
        tree.write(temporary, encoding="utf-8", xml_declaration=_has_declaration(path))
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    return changes, warnings


def _has_declaration(path: Path) -> bool:
    return path.read_bytes().lstrip().startswith(b"<?xml")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Sync an OpenAS2 keystore and partnerships.xml with the portal's document."
    )
    parser.add_argument("--config", required=True, type=Path, help="the config document (JSON)")
    parser.add_argument("--keystore", required=True, type=Path, help="OpenAS2's PKCS#12 keystore")
    parser.add_argument(
        "--storepass-file", required=True, type=Path, help="its password, in a file"
    )
    parser.add_argument("--partnerships", type=Path, help="partnerships.xml to update")
    parser.add_argument("--keys", type=Path, help="folder of <alias>.p12 for our identities")
    parser.add_argument("--keys-passphrase-file", type=Path, help="passphrase of those .p12 files")
    parser.add_argument("--keytool", default="keytool", help="the keytool program")
    parser.add_argument("--prune", action="store_true", help="delete portal aliases not in use")
    parser.add_argument("--dry-run", action="store_true", help="print, change nothing")
    args = parser.parse_args(argv)

    document = json.loads(args.config.read_text(encoding="utf-8"))
    wanted = plan(document)
    keytool = Keytool(
        args.keystore, args.storepass_file, args.keys, args.keys_passphrase_file,
        args.keytool, args.dry_run,
    )  # fmt: skip
    try:
        changed = keytool.sync(wanted.entries, prune=args.prune)
    except subprocess.CalledProcessError as error:
        print(f"keytool failed: {error.stderr or error}", file=sys.stderr)
        return 1
    warnings = list(wanted.warnings)
    if args.partnerships:
        edits, more = update_partnerships(args.partnerships, wanted.aliases, dry_run=args.dry_run)
        changed += edits
        warnings += more
    if args.dry_run:
        print("\n".join(keytool.printed))
    for line in changed:
        print(("would: " if args.dry_run else "") + line)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
