"""The portal for real, on loopback: its command line, gunicorn or `portal serve`, and clients.

Shared by the tests that drive running processes (tests/test_load_sqlite.py,
tests/test_several_processes.py). Latencies are recorded to be printed, never asserted.
"""

from __future__ import annotations

import http.cookiejar
import importlib.util
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')  # fmt: skip


def portal_command() -> list[str]:
    """How to run `portal ...` from this interpreter (no console script needed)."""
    return [sys.executable, "-m", "flask", "--app", "portal"]


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_portal(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run `portal ARGS` with ENV; its standard output (it must succeed)."""
    done = subprocess.run(  # noqa: S603  (our own CLI)
        [*portal_command(), *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def has_module(name: str) -> bool:
    """Whether NAME can be imported here."""
    return importlib.util.find_spec(name) is not None


def start_server(
    env: Mapping[str, str],
    kind: str,
    port: int,
    log: Path,
    *,
    workers: int = 2,
    threads: int = 4,
) -> subprocess.Popen[bytes]:
    """Start `portal serve` or gunicorn (as the Docker image runs it) and wait for /healthz."""
    if kind == "serve":
        command = [*portal_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:  # as the Docker image runs it, with its settings file
        command = [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf",
                   "portal:create_app()"]  # fmt: skip
        env = {**env, "PORTAL_WEB_BIND": f"127.0.0.1:{port}",
               "PORTAL_WEB_WORKERS": str(workers), "PORTAL_WEB_THREADS": str(threads)}  # fmt: skip
    return start_process(command, env, log, health=f"http://127.0.0.1:{port}/healthz")


def start_process(
    command: list[str], env: Mapping[str, str], log: Path, *, health: str | None = None
) -> subprocess.Popen[bytes]:
    """Start COMMAND with its output in LOG; with HEALTH, wait until that URL answers 200."""
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  (our own programs)
            command, env=dict(env), stdout=output, stderr=subprocess.STDOUT
        )
    if health is None:
        return process
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as answer:  # noqa: S310  (loopback)
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise AssertionError(f"{command[:3]} did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask PROCESS to stop (SIGTERM) and wait for it."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let 3xx answers through as they are: each request is measured alone."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Tally:
    """What every client saw: latencies per kind of request, and anything that went wrong."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float) -> None:
        """Record one answer."""
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind].append(status)

    def server_errors(self) -> dict[str, list[int]]:
        """The 5xx answers, by kind of request."""
        return {kind: [s for s in found if s >= 500] for kind, found in self.statuses.items()}


class Client:
    """One browser: its own cookies, no redirects followed; BASE may change between requests."""

    def __init__(self, base: str, tally: Tally, headers: Mapping[str, str] | None = None) -> None:
        self.base = base
        self.tally = tally
        self.headers = dict(headers or {})
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(
        self,
        kind: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> str:
        """GET PATH, or POST FORM (or a raw BODY); the answer's text ("" when none came)."""
        return self.exchange(kind, path, form, body=body, content_type=content_type)[1]

    def exchange(
        self,
        kind: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, str]:
        """Like request, with the status (0 when no answer came)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else body
        wanted = urllib.request.Request(self.base + path, data=data, headers=self.headers)  # noqa: S310
        if content_type is not None:
            wanted.add_header("Content-Type", content_type)
        started = time.perf_counter()
        try:
            with self.opener.open(wanted, timeout=60) as answer:
                text = answer.read().decode("utf-8", "replace")
                status = answer.status
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            status = error.code
        except OSError as error:
            with self.tally.lock:
                self.tally.failures.append(f"{kind} {path}: {type(error).__name__}: {error}")
            return 0, ""
        self.tally.add(kind, status, time.perf_counter() - started)
        return status, text

    def csrf_token(self, path: str = "/login") -> str:
        """The CSRF token of the first form on PATH."""
        match = CSRF.search(self.request("form", path))
        assert match is not None, f"no CSRF token on {path}"
        return match.group(1) or match.group(2)

    def sign_in(self, email: str, password: str) -> None:
        """Sign in as EMAIL (the session cookie stays with this client)."""
        token = self.csrf_token()
        self.request("login", "/login", {"email": email, "password": password, "csrf_token": token})


def percentile(values: list[float], share: float) -> float:
    """The SHARE percentile of VALUES (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
