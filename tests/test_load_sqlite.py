"""Sixteen people at once on the embedded default (SQLite in the instance folder).

The portal runs for real, as `portal serve` and as the Docker image runs it (gunicorn,
2 workers x 4 threads), on loopback. Sixteen clients work it for a bounded time: staff
reading pages, partners opening their link (each open is written to the audit trail),
operators creating links, and a flood of wrong passwords. Nothing may answer 5xx or
fail to answer. The latencies are printed (run with -s to read them); they are figures
to note, never asserted: a slow machine must not fail the suite.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("PORTAL_TEST_DATABASE_URL")),
        reason="the embedded SQLite default is what this drives; it runs in the SQLite run",
    ),
]

PASSWORD = "load test passphrase 1"
SECONDS = float(os.environ.get("PORTAL_LOAD_SECONDS", "8"))
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')  # fmt: skip
STAFF_PAGES = ["/", "/audit", "/identities", "/partners", "/submissions"]


def portal_command() -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "portal"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Site:
    """A seeded instance folder, its environment, and what the clients need to know."""

    env: dict[str, str]
    partner_id: int = 0
    link_path: str = ""


def run_portal(site: Site, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603  (our own CLI)
        [*portal_command(), *args],
        env=site.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A fresh default install: SQLite in the instance folder, a few users, a partner, a link."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path / "instance")
    site = Site(env=env)
    run_portal(site, "init")
    for email, role in [("viewer@example.com", "viewer"), ("operator@example.com", "operator")]:
        run_portal(
            site, "user", "create", email, "--role", role, "--password-stdin", stdin=PASSWORD
        )
    run_portal(site, "identity", "add", "--name", "Acme", "--as2-id", "ACMEAS2")
    run_portal(
        site, "partner", "add", "--name", "Globex", "--as2-id", "GLOBEXAS2",
        "--identity", "ACMEAS2", "--email", "edi@globex.example",
    )  # fmt: skip
    url = run_portal(site, "link", "create", "--partner", "GLOBEXAS2").strip().splitlines()[-1]
    site.link_path = urllib.parse.urlsplit(url).path
    site.partner_id = 1
    return site


def start_server(site: Site, kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    if kind == "serve":
        command = [*portal_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:  # as the Dockerfile runs it
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--access-logfile", "-",
            "--logger-class", "portal.logs.GunicornLogger", "portal:create_app()",
        ]  # fmt: skip
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=site.env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise AssertionError(f"{kind} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def serving(site: Site, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    kind = request.param
    if kind == "gunicorn" and shutil.which("gunicorn") is None and not _has_module("gunicorn"):
        pytest.skip("gunicorn is not installed")
    port = free_port()
    server = start_server(site, kind, port, tmp_path / f"{kind}.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


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
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind].append(status)


class Client:
    """One browser: its own cookies, no redirects followed."""

    def __init__(self, base: str, tally: Tally) -> None:
        self.base = base
        self.tally = tally
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(self, kind: str, path: str, form: dict[str, str] | None = None) -> str:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, data=data, timeout=60) as answer:
                body = answer.read().decode("utf-8", "replace")
                status = answer.status
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")
            status = error.code
        except OSError as error:
            with self.tally.lock:
                self.tally.failures.append(f"{kind} {path}: {type(error).__name__}: {error}")
            return ""
        self.tally.add(kind, status, time.perf_counter() - started)
        return body

    def csrf_token(self, path: str = "/login") -> str:
        match = CSRF.search(self.request("form", path))
        assert match is not None, f"no CSRF token on {path}"
        return match.group(1) or match.group(2)

    def sign_in(self, email: str) -> None:
        token = self.csrf_token()
        self.request("login", "/login", {"email": email, "password": PASSWORD, "csrf_token": token})


def until(deadline: float) -> Iterator[None]:
    """At least once, then again until DEADLINE: on a slow machine every client still acts."""
    yield
    while time.monotonic() < deadline:
        yield


def staff_reader(client: Client, deadline: float) -> None:
    client.sign_in("viewer@example.com")
    for turn, _ in enumerate(until(deadline)):
        client.request("staff page", STAFF_PAGES[turn % len(STAFF_PAGES)])


def partner_visitor(client: Client, site: Site, deadline: float) -> None:
    for _ in until(deadline):
        client.request("partner page", site.link_path)


def link_creator(client: Client, site: Site, deadline: float) -> None:
    client.sign_in("operator@example.com")
    token = client.csrf_token(f"/partners/{site.partner_id}")
    form = {
        "csrf_token": token,
        "link-purposes": "download",
        "link-expires": "1d",
        "link-max_uploads": "1",
    }
    for _ in until(deadline):
        client.request("create link", f"/partners/{site.partner_id}/links", form)


def password_guesser(client: Client, deadline: float) -> None:
    token = client.csrf_token()
    form = {"email": "viewer@example.com", "password": "wrong guess", "csrf_token": token}
    for _ in until(deadline):
        client.request("wrong password", "/login", form)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@pytest.mark.parametrize("serving", ["serve", "gunicorn"], indirect=True)
def test_sixteen_concurrent_clients_on_the_default_sqlite_install(
    site: Site, serving: str, request: pytest.FixtureRequest
) -> None:
    tally = Tally()
    deadline = time.monotonic() + SECONDS
    work = (
        [lambda c: staff_reader(c, deadline)] * 8
        + [lambda c: partner_visitor(c, site, deadline)] * 4
        + [lambda c: link_creator(c, site, deadline)] * 2
        + [lambda c: password_guesser(c, deadline)] * 2
    )
    threads = [threading.Thread(target=job, args=(Client(serving, tally),)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads), "a client never finished"

    server = request.node.callspec.params["serving"]
    print(f"\n16 clients for {SECONDS:.0f} s against {server} on SQLite:")
    for kind, values in sorted(tally.latencies.items()):
        print(
            f"  {kind:15} n={len(values):5}  p50={percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p95={percentile(values, 0.95) * 1000:7.1f} ms"
            f"  max={max(values) * 1000:7.1f} ms"
        )
    assert tally.failures == []
    server_errors = {
        kind: [s for s in statuses if s >= 500] for kind, statuses in tally.statuses.items()
    }
    assert all(not errors for errors in server_errors.values()), server_errors
    assert set(tally.statuses["staff page"]) == {200}
    assert set(tally.statuses["partner page"]) == {200}
    assert set(tally.statuses["create link"]) == {302}
    assert set(tally.statuses["wrong password"]) == {401}
