"""Sixteen people at once on the embedded default (SQLite in the instance folder).

The portal runs for real, as `portal serve` and as the Docker image runs it (gunicorn,
2 workers x 4 threads), on loopback. Sixteen clients work it for a bounded time: staff
reading pages, partners opening their link (each open is written to the audit trail),
operators creating links, and a flood of wrong passwords. Nothing may answer 5xx or
fail to answer. The latencies are printed (run with -s to read them); they are figures
to note, never asserted: a slow machine must not fail the suite.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.liveserver import (
    Client,
    Tally,
    free_port,
    has_module,
    percentile,
    run_portal,
    start_server,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("PORTAL_TEST_DATABASE_URL")),
        reason="the embedded SQLite default is what this drives; it runs in the SQLite run",
    ),
]

PASSWORD = "load test passphrase 1"
SECONDS = float(os.environ.get("PORTAL_LOAD_SECONDS", "8"))
STAFF_PAGES = ["/", "/audit", "/identities", "/partners", "/submissions"]


@dataclass
class Site:
    """A seeded instance folder, its environment, and what the clients need to know."""

    env: dict[str, str]
    partner_id: int = 0
    link_path: str = ""


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A fresh default install: SQLite in the instance folder, a few users, a partner, a link."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path / "instance")
    site = Site(env=env)
    run_portal(site.env, "init")
    for email, role in [("viewer@example.com", "viewer"), ("operator@example.com", "operator")]:
        run_portal(
            site.env, "user", "create", email, "--role", role, "--password-stdin", stdin=PASSWORD
        )
    run_portal(site.env, "identity", "add", "--name", "Acme", "--as2-id", "ACMEAS2")
    run_portal(
        site.env, "partner", "add", "--name", "Globex", "--as2-id", "GLOBEXAS2",
        "--identity", "ACMEAS2", "--email", "edi@globex.example",
    )  # fmt: skip
    url = run_portal(site.env, "link", "create", "--partner", "GLOBEXAS2").strip().splitlines()[-1]
    site.link_path = urllib.parse.urlsplit(url).path
    site.partner_id = 1
    return site


@pytest.fixture
def serving(site: Site, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    kind = request.param
    if kind == "gunicorn" and shutil.which("gunicorn") is None and not has_module("gunicorn"):
        pytest.skip("gunicorn is not installed")
    port = free_port()
    server = start_server(site.env, kind, port, tmp_path / f"{kind}.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def until(deadline: float) -> Iterator[None]:
    """At least once, then again until DEADLINE: on a slow machine every client still acts."""
    yield
    while time.monotonic() < deadline:
        yield


def staff_reader(client: Client, deadline: float) -> None:
    for turn, _ in enumerate(until(deadline)):
        client.request("staff page", STAFF_PAGES[turn % len(STAFF_PAGES)])


def partner_visitor(client: Client, site: Site, deadline: float) -> None:
    for _ in until(deadline):
        client.request("partner page", site.link_path)


def link_creator(client: Client, site: Site, deadline: float) -> None:
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
    form = {"email": "guessed@example.com", "password": "wrong guess", "csrf_token": token}
    for _ in until(deadline):
        client.request("wrong password", "/login", form)


@pytest.mark.parametrize("serving", ["serve", "gunicorn"], indirect=True)
def test_sixteen_concurrent_clients_on_the_default_sqlite_install(
    site: Site, serving: str, request: pytest.FixtureRequest
) -> None:
    tally = Tally()
    # Staff sign in before the flood of wrong passwords from the same address begins: past
    # its limit that address is refused (429), which is the throttle doing its work.
    readers = [Client(serving, tally) for _ in range(8)]
    creators = [Client(serving, tally) for _ in range(2)]
    for client in readers:
        client.sign_in("viewer@example.com", PASSWORD)
    for client in creators:
        client.sign_in("operator@example.com", PASSWORD)
    deadline = time.monotonic() + SECONDS
    work = (
        [(lambda c: staff_reader(c, deadline), client) for client in readers]
        + [(lambda c: partner_visitor(c, site, deadline), Client(serving, tally)) for _ in range(4)]
        + [(lambda c: link_creator(c, site, deadline), client) for client in creators]
        + [(lambda c: password_guesser(c, deadline), Client(serving, tally)) for _ in range(2)]
    )
    threads = [threading.Thread(target=job, args=(client,)) for job, client in work]
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
    # Wrong passwords are refused (401), and once the address used up its failures, throttled.
    assert set(tally.statuses["wrong password"]) <= {401, 429}
    assert 401 in tally.statuses["wrong password"]
