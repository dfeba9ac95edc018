#!/usr/bin/env python3
"""AWS Transfer Family follows the portal: `aws transfer import-certificate` with dates.

Transfer Family keeps AS2 certificates as certificate resources (SIGNING or ENCRYPTION)
with an optional ActiveDate and InactiveDate (defaults: the certificate's NotBefore and
NotAfter), referenced by a local profile (our identity) or a partner profile through
`--certificate-ids`. Give each certificate the dates the portal decided, and the switch
happens on time with nobody at the console:

- certificates that *receive* (our ENCRYPTION certificates decrypt inbound messages, a
  partner's SIGNING certificates verify them): ActiveDate = `accept_from` (from approval,
  so a partner switching early is accepted), InactiveDate = `accept_until`;
- certificates that *send* (our SIGNING, a partner's ENCRYPTION): ActiveDate =
  `activate_at`, InactiveDate = the next certificate's `activate_at`, so two of them are
  never active together and nothing goes out under the new one before the agreed time.

An open end (`accept_until` null: no successor yet) leaves the option out, so Transfer
Family uses the certificate's own date. The default is a dry run: the commands are
printed, one per line, ready for a shell; --run executes them with the `aws` CLI.
Private keys of our identities come from --keys as `<alias>.key.pem` (PEM, unencrypted;
e.g. `openssl pkcs12 -in <alias>.p12 -nocerts -nodes -out <alias>.key.pem` from the
portal's keystore export). Certificates and their chains are written under --workdir.

Usage:

    python3 examples/aws_transfer_import.py --config state/config.json --workdir aws-import
    python3 examples/aws_transfer_import.py --config state/config.json --partner PARTNERAS2
    python3 examples/aws_transfer_import.py --config ... --keys keys/ --run --profile prod

After importing, attach the new certificate IDs to the profiles with
`aws transfer update-profile --profile-id ... --certificate-ids ...`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Which dates a certificate gets: does it receive (accept window) or send (activation)?
RECEIVES = {("identities", "encryption"), ("partners", "signing")}


@dataclass
class Import:
    """One `aws transfer import-certificate` call."""

    owner: str
    usage: str
    certificate: dict[str, Any]
    active: str | None
    inactive: str | None
    private_key: Path | None

    def command(self, workdir: Path, extra: Sequence[str] = ()) -> list[str]:
        alias = self.certificate["alias"]
        command = [
            "aws", "transfer", "import-certificate",
            "--usage", self.usage.upper(),
            "--certificate", f"file://{workdir / f'{alias}.pem'}",
        ]  # fmt: skip
        if self.certificate.get("chain"):
            command += ["--certificate-chain", f"file://{workdir / f'{alias}.chain.pem'}"]
        if self.private_key is not None:
            command += ["--private-key", f"file://{self.private_key}"]
        if self.active:
            command += ["--active-date", self.active]
        if self.inactive:
            command += ["--inactive-date", self.inactive]
        # Descriptions allow no spaces (pattern [\p{Graph}]+).
        command += ["--description", f"portal:{self.usage}:{alias}"]
        return [*command, *extra]


def certificates_of(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dated certificate of one owner and usage, in activation order."""
    seen: dict[str, dict[str, Any]] = {}
    for certificate in [state["previous"], state["active"], *state["scheduled"], *state["accept"]]:
        if certificate is not None:
            seen.setdefault(certificate["alias"], certificate)
    return sorted(seen.values(), key=lambda c: c["activate_at"] or "")


def imports(
    document: dict[str, Any], keys: Path | None = None, only: set[str] | None = None
) -> Iterator[Import]:
    """The calls that give Transfer Family every certificate in DOCUMENT, with its dates."""
    for kind in ("identities", "partners"):
        for owner in document.get(kind, []):
            if only and owner["as2_id"] not in only:
                continue
            for usage, state in owner["certificates"].items():
                timeline = certificates_of(state)
                for index, certificate in enumerate(timeline):
                    if (kind, usage) in RECEIVES:
                        active, inactive = certificate["accept_from"], certificate["accept_until"]
                    else:
                        following = timeline[index + 1 : index + 2]
                        active = certificate["activate_at"]
                        inactive = following[0]["activate_at"] if following else None
                    key = keys / f"{certificate['alias']}.key.pem" if keys else None
                    own_key = kind == "identities" and key is not None and key.exists()
                    yield Import(
                        owner["as2_id"], usage, certificate, active, inactive,
                        key if own_key else None,
                    )  # fmt: skip


def write_files(workdir: Path, plan: list[Import]) -> None:
    """The certificate (and chain) files the commands point at."""
    workdir.mkdir(parents=True, exist_ok=True)
    for item in plan:
        alias = item.certificate["alias"]
        (workdir / f"{alias}.pem").write_text(item.certificate["pem"], encoding="ascii")
        if item.certificate.get("chain"):
            chain = "".join(item.certificate["chain"])
            (workdir / f"{alias}.chain.pem").write_text(chain, encoding="ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print (or run) aws transfer import-certificate for the certificates in force."
    )
    parser.add_argument("--config", required=True, type=Path, help="the config document (JSON)")
    parser.add_argument("--workdir", type=Path, default=Path("aws-import"), help="PEM files here")
    parser.add_argument("--keys", type=Path, help="folder of <alias>.key.pem for our identities")
    parser.add_argument("--partner", action="append", help="only these AS2 IDs (repeatable)")
    parser.add_argument("--identity", action="append", help="only these AS2 IDs (repeatable)")
    parser.add_argument("--profile", help="the AWS CLI profile (--profile) for --run")
    parser.add_argument("--region", help="the AWS region (--region) for --run")
    parser.add_argument("--run", action="store_true", help="run the commands (default: print)")
    args = parser.parse_args(argv)

    document = json.loads(args.config.read_text(encoding="utf-8"))
    only = set((args.partner or []) + (args.identity or [])) or None
    plan = list(imports(document, args.keys, only))
    write_files(args.workdir, plan)
    extra = [*(["--profile", args.profile] if args.profile else []),
             *(["--region", args.region] if args.region else [])]  # fmt: skip
    for item in plan:
        command = item.command(args.workdir, extra)
        print(shlex.join(command))
        if args.run:
            done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            print(done.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
