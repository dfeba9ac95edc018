#!/usr/bin/env python3
"""Follow the portal's certificates in force: poll GET /api/v1/config, write PEM files.

Standard library only. Each round sends the last ETag in If-None-Match, so an unchanged
answer costs one 304 and nothing is rewritten. It sleeps until the earliest
`next_change_at` in the document (the next moment the answer changes by itself) or
--interval seconds, whichever comes first. Changes made by people (a new approval, a
rollback) show up within --interval.

Files written under --out (the layout of `portal export --dir`, certificates only):

    config.json                                   the document as served
    .etag                                         the ETag of config.json (resumes 304s)
    identities/<as2_id>/<usage>/send.pem          the certificate to send with, if any
    identities/<as2_id>/<usage>/accept-<alias>.pem  one per certificate to accept inbound
    partners/<as2_id>/<usage>/...                 the same for each partner

<usage> is `signing` or `encryption`. Every file is written to a temporary name and
renamed into place; new `accept-*` files appear before stale ones are removed, so an
engine reading the folder at any moment sees a set that was in force.

Errors: 401/403 (token missing, revoked, or without `config:read`) and network or
server errors keep the files as they are and retry with exponential backoff (up to
--max-backoff seconds), re-reading the token file each time. With --once the exit code
says what happened: 0 written or not modified, 3 refused (401/403), 4 unreachable.

Usage:

    export PORTAL_TOKEN=cep_...      # portal token create engine --scope config:read
    python3 examples/poll_config.py --url https://portal.example.com --out /var/lib/as2/certs
    python3 examples/poll_config.py --url ... --token-file /etc/as2/token --once
    python3 examples/poll_config.py --url ... --out DIR --on-change 'systemctl reload as2'
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

USAGES = ("signing", "encryption")
OWNER_KINDS = ("identities", "partners")


class RefusedError(Exception):
    """The portal answered 401 or 403: the token is wrong, revoked or lacks config:read."""


class UnreachableError(Exception):
    """No answer, or a server error (5xx) or an unexpected status."""


@dataclass
class Answer:
    """One round: the status (200 or 304), the document (the last one on 304), its ETag."""

    status: int
    document: dict[str, Any]
    etag: str | None


@dataclass
class ConfigClient:
    """GET /api/v1/config with a Bearer token, remembering the ETag per query."""

    base_url: str
    token: Callable[[], str]
    timeout: float = 10.0
    _last: dict[str, Answer] = field(default_factory=dict)

    def url(self, **query: str | None) -> str:
        """The config URL with the query parameters that are set."""
        chosen = {k: v for k, v in query.items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(chosen)}" if chosen else ""
        return f"{self.base_url.rstrip('/')}/api/v1/config{suffix}"

    def remember(self, url: str, document: dict[str, Any], etag: str) -> None:
        """Start from a document kept on disk, so the first round can already be a 304."""
        self._last[url] = Answer(200, document, etag)

    def get(self, **query: str | None) -> Answer:
        """The document for QUERY (at, identity, partner, environment)."""
        url = self.url(**query)
        request = urllib.request.Request(url)  # noqa: S310  (an http(s) URL the operator gives)
        request.add_header("Authorization", f"Bearer {self.token()}")
        request.add_header("Accept", "application/json")
        last = self._last.get(url)
        if last is not None and last.etag:
            request.add_header("If-None-Match", last.etag)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                document = json.load(response)
                etag = response.headers.get("ETag")
        except urllib.error.HTTPError as error:
            if error.code == 304 and last is not None:
                return Answer(304, last.document, last.etag)
            if error.code in (401, 403):
                raise RefusedError(f"{error.code}: {_error_text(error)}") from None
            raise UnreachableError(f"{error.code}: {_error_text(error)}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise UnreachableError(str(error)) from None
        self._last[url] = Answer(200, document, etag)
        return self._last[url]


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return error.reason if isinstance(error.reason, str) else "error"


# --- reading the document ----------------------------------------------------------------


def owners(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each identity and partner entry with its kind ("identities" or "partners")."""
    for kind in OWNER_KINDS:
        for owner in document.get(kind, []):
            yield kind, owner


def next_change(document: dict[str, Any]) -> datetime | None:
    """The earliest next_change_at anywhere in the document."""
    moments = [
        parse_time(usage["next_change_at"])
        for _kind, owner in owners(document)
        for usage in owner["certificates"].values()
        if usage.get("next_change_at")
    ]
    return min(moments, default=None)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as the portal writes it (UTC, with Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wanted_files(document: dict[str, Any]) -> dict[Path, str]:
    """Relative path -> PEM text, for every send and accept certificate."""
    files: dict[Path, str] = {}
    for kind, owner in owners(document):
        for usage in USAGES:
            state = owner["certificates"].get(usage)
            if not state:
                continue
            folder = Path(kind) / _safe(owner["as2_id"]) / usage
            if state["send"]:
                files[folder / "send.pem"] = _with_chain(state["send"])
            for certificate in state["accept"]:
                files[folder / f"accept-{certificate['alias']}.pem"] = _with_chain(certificate)
    return files


def _with_chain(certificate: dict[str, Any]) -> str:
    return certificate["pem"] + "".join(certificate.get("chain") or [])


def _safe(as2_id: str) -> str:
    """An AS2 ID as a folder name (AS2 IDs may hold characters a file name must not)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in as2_id) or "_"


# --- writing -----------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write TEXT to PATH through a temporary file and one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_tree(out: Path, document: dict[str, Any], etag: str | None) -> list[str]:
    """Bring OUT in line with DOCUMENT; the relative paths changed (written or removed)."""
    wanted = wanted_files(document)
    changed: list[str] = []
    for relative, text in sorted(wanted.items(), key=lambda item: item[0].name == "send.pem"):
        target = out / relative
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_atomically(target, text)
            changed.append(str(relative))
    for kind in OWNER_KINDS:
        for stale in sorted((out / kind).glob("*/*/*.pem")) if (out / kind).exists() else []:
            if stale.relative_to(out) not in wanted:
                stale.unlink()
                changed.append(str(stale.relative_to(out)))
    write_atomically(out / "config.json", json.dumps(document, indent=2) + "\n")
    write_atomically(out / ".etag", etag or "")
    return changed


# --- the loop ----------------------------------------------------------------------------


@dataclass
class Poller:
    """One poller: a client, an output folder, and how long to wait between rounds."""

    client: ConfigClient
    out: Path
    interval: float = 60.0
    max_backoff: float = 300.0
    on_change: str | None = None
    query: dict[str, str | None] = field(default_factory=dict)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    failures: int = 0

    def resume(self) -> None:
        """Send the ETag of the files on disk with the first request (a restart costs a 304)."""
        config, etag = self.out / "config.json", self.out / ".etag"
        if config.exists() and etag.exists() and etag.read_text().strip():
            document = json.loads(config.read_text(encoding="utf-8"))
            self.client.remember(self.client.url(**self.query), document, etag.read_text().strip())

    def round(self) -> Answer:
        """Ask once and write what changed; raises RefusedError or UnreachableError."""
        answer = self.client.get(**self.query)
        if answer.status == 304:
            self.log(f"not modified (ETag {answer.etag})")
            return answer
        changed = write_tree(self.out, answer.document, answer.etag)
        self.log(f"written: {len(changed)} file(s) changed (ETag {answer.etag})")
        if changed and self.on_change:
            subprocess.run(shlex.split(self.on_change), check=False)  # noqa: S603
        return answer

    def wait_after(self, answer: Answer | None) -> float:
        """Seconds to sleep: until the next change or the interval; backoff after failures."""
        if answer is None:
            backoff = min(self.max_backoff, 2.0**self.failures)
            return backoff * random.uniform(0.8, 1.2)  # noqa: S311  (jitter, not crypto)
        upcoming = next_change(answer.document)
        if upcoming is None:
            return self.interval
        # One second late, so the portal's answer has certainly changed when we ask.
        until = (upcoming - self.now()).total_seconds() + 1.0
        return max(1.0, min(self.interval, until))

    def step(self) -> tuple[Answer | None, float]:
        """One round with its error handling; the answer (None on failure) and the wait."""
        try:
            answer: Answer | None = self.round()
            self.failures = 0
        except RefusedError as error:
            self.failures += 1
            self.log(f"refused: {error}; check the token (scope config:read); files kept")
            answer = None
        except UnreachableError as error:
            self.failures += 1
            self.log(f"portal unreachable: {error}; files kept, retrying")
            answer = None
        return answer, self.wait_after(answer)

    def run_forever(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Poll until interrupted."""
        self.resume()
        while True:
            _answer, wait = self.step()
            sleep(wait)


def token_reader(token_file: str | None) -> Callable[[], str]:
    """Read the token on each request (so a rotated token file is picked up)."""

    def read() -> str:
        if token_file:
            return Path(token_file).read_text(encoding="utf-8").strip()
        token = os.environ.get("PORTAL_TOKEN", "").strip()
        if not token:
            raise SystemExit("Set PORTAL_TOKEN or pass --token-file.")
        return token

    return read


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Poll the portal's /api/v1/config and write the certificates in force.",
        epilog="Exit codes with --once: 0 ok, 3 refused (401/403), 4 unreachable.",
    )
    parser.add_argument("--url", required=True, help="the portal's base URL")
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    parser.add_argument("--token-file", help="file holding the token (default: $PORTAL_TOKEN)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between polls")
    parser.add_argument("--max-backoff", type=float, default=300.0, help="longest retry wait")
    parser.add_argument("--identity", help="only this identity (AS2 ID) and its partners")
    parser.add_argument("--partner", help="only this partner (AS2 ID) and its identity")
    parser.add_argument("--on-change", help="command to run after files changed")
    parser.add_argument("--once", action="store_true", help="poll once and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    poller = Poller(
        ConfigClient(args.url, token_reader(args.token_file)),
        args.out,
        interval=args.interval,
        max_backoff=args.max_backoff,
        on_change=args.on_change,
        query={"identity": args.identity, "partner": args.partner},
    )
    if not args.once:
        try:
            poller.run_forever()
        except KeyboardInterrupt:
            return 0
    poller.resume()
    try:
        poller.round()
    except RefusedError as error:
        poller.log(f"refused: {error}")
        return 3
    except UnreachableError as error:
        poller.log(f"portal unreachable: {error}")
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
