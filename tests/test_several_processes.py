"""Several hosts: two gunicorn servers and two schedulers on one PostgreSQL and one Redis.

Each server and scheduler gets its own instance folder, as on separate machines; what they
share comes from the environment (secret key, key-encryption and link-signing keys) and from
PostgreSQL and Redis. Clients work both servers at once: partners upload through either,
an approver signs in on one and approves on the other, links are looked up wrongly through
both, a campaign's emails and every notice are sent by whichever scheduler gets there
first. Nothing may be lost, doubled or answered 5xx, and the rate limit must be one limit.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.database import make_engine
from portal.models import OutboxMessage, SideEffect, Submission
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.linkhelpers import browser_form
from tests.liveserver import (
    Client,
    Tally,
    free_port,
    has_module,
    portal_command,
    run_portal,
    start_process,
    start_server,
    stop,
)
from tests.schedulehelpers import iso_z

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("PORTAL_TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="several hosts share PostgreSQL: this runs in the PostgreSQL run",
    ),
    pytest.mark.skipif(not has_module("gunicorn"), reason="gunicorn is not installed"),
]

PASSWORD = "several hosts passphrase 1"
PARTNERS = 12
INVALID_LINK_LIMIT = 5


@pytest.fixture
def hosts(tmp_path: Path, fresh_databases, redis_uri: str, smtp_server) -> Any:
    """Two servers and two schedulers started on a seeded database; stopped afterwards."""
    handler, smtp_port = smtp_server
    shared = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    shared.update(
        PORTAL_DATABASE_URL=fresh_databases.new_url(),
        PORTAL_SECRET_KEY=secrets.token_urlsafe(48),
        PORTAL_KEY_ENCRYPTION_KEYS=factories.new_kek(),
        PORTAL_LINK_SIGNING_KEYS=secrets.token_urlsafe(48),
        PORTAL_RATELIMIT_STORAGE_URI=redis_uri,
        PORTAL_RATELIMIT_INVALID_LINKS=f"{INVALID_LINK_LIMIT} per minute",
        PORTAL_TRUSTED_PROXIES="1",  # so each test run limits its own made-up address
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(smtp_port),
        PORTAL_BASE_URL="http://portal.test",
    )

    def host(name: str) -> dict[str, str]:
        return {**shared, "PORTAL_INSTANCE_PATH": str(tmp_path / name)}

    seeded = seed(host("seed"))
    processes = []
    try:
        servers = []
        for name in ("web-a", "web-b"):
            port = free_port()
            log = tmp_path / f"{name}.log"
            processes.append((log, start_server(host(name), "gunicorn", port, log, threads=2)))
            servers.append(f"http://127.0.0.1:{port}")
        for name in ("scheduler-a", "scheduler-b"):
            log = tmp_path / f"{name}.log"
            command = [*portal_command(), "scheduler", "--interval", "1"]
            processes.append((log, start_process(command, host(name), log)))
        yield {"servers": servers, "handler": handler, "env": host("check"), **seeded}
    finally:
        for _, process in processes:
            stop(process)
    for log, _ in processes:
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-3000:]


def seed(env: dict[str, str]) -> dict[str, Any]:
    """An approver, an operator, our identity with a certificate, partners with upload links."""
    run_portal(env, "init")
    for email, role in (("approver@acme.example", "approver"), ("ops@acme.example", "operator")):
        run_portal(env, "user", "create", email, "--role", role, "--password-stdin", stdin=PASSWORD)
    run_portal(env, "identity", "add", "--name", "Acme", "--as2-id", "ACME",
               "--organisation", "Acme Corp")  # fmt: skip
    generated = run_portal(env, "identity", "generate", "--as2-id", "ACME", "--key-size", "2048")
    (sha256,) = re.findall(r"\b[0-9a-f]{64}\b", generated.replace(":", "").lower())[:1]
    links = []
    for n in range(PARTNERS):
        as2_id = f"P{n:02d}"
        run_portal(env, "partner", "add", "--name", f"Partner {n:02d}", "--as2-id", as2_id,
                   "--identity", "ACME", "--email", f"edi@{as2_id.lower()}.example")  # fmt: skip
        url = run_portal(env, "link", "create", "--partner", as2_id, "--purpose", "upload")
        links.append(url.strip().splitlines()[-1].removeprefix("http://portal.test"))
    return {"links": links, "sha256": sha256}


def upload(client: Client, link: str) -> None:
    """A partner's program posts a fresh certificate to its link (machine upload)."""
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key=certfactory.rsa_key(3072))
    client.request(
        "upload", f"{link}/certificate", body=certfactory.pem(cert),
        content_type="application/x-pem-file",
    )  # fmt: skip


def approve_all(servers: list[str], tally: Tally, count: int) -> None:
    """Sign in on the first server, then approve each waiting submission on the other one."""
    approver = Client(servers[0], tally)
    approver.sign_in("approver@acme.example", PASSWORD)
    approver.base = servers[1]  # the same session cookie, another host
    listing = approver.request("staff page", "/submissions")
    ids = sorted(set(re.findall(r'href="/submissions/(\d+)"', listing)), key=int)
    assert len(ids) == count, listing[-2000:]
    for turn, submission_id in enumerate(ids):
        approver.base = servers[turn % 2]
        path = f"/submissions/{submission_id}"
        form = browser_form(approver.request("staff page", path), f"{path}/approve")
        form.update({"approve-when": "now"})
        approver.request("approve", f"{path}/approve", form)


def wrong_links(servers: list[str], tally: Tally, address: str) -> list[int]:
    """Ten look-ups of a made-up link, alternating between the hosts, from one address."""
    statuses = []
    for turn in range(2 * INVALID_LINK_LIMIT):
        client = Client(servers[turn % 2], tally, headers={"X-Forwarded-For": address})
        statuses.append(client.exchange("wrong link", "/s/not-a-token")[0])
    return statuses


def wait_until_sent(env: dict[str, str], seconds: float = 90) -> int:
    """Wait for the schedulers to empty the outbox; the number of messages sent."""
    engine = make_engine(env["PORTAL_DATABASE_URL"])
    try:
        deadline = time.monotonic() + seconds
        while True:
            with engine.connect() as connection:
                unsent = connection.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_(None))
                )
                sent = connection.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_not(None))
                )
            if unsent == 0 or time.monotonic() > deadline:
                assert unsent == 0, f"{unsent} messages still unsent"
                return int(sent or 0)
            time.sleep(0.5)
    finally:
        engine.dispose()


def test_two_hosts_and_two_schedulers_lose_nothing_and_double_nothing(hosts) -> None:
    servers, handler, env = hosts["servers"], hosts["handler"], hosts["env"]
    tally = Tally()
    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    limited: list[int] = []
    partners = [
        threading.Thread(target=upload, args=(Client(servers[n % 2], tally), link))
        for n, link in enumerate(hosts["links"])
    ]
    prober = threading.Thread(target=lambda: limited.extend(wrong_links(servers, tally, address)))
    for thread in (*partners, prober):
        thread.start()
    at = iso_z((utcnow() + timedelta(days=10)).replace(second=0, microsecond=0))
    run_portal(env, "campaign", "start", "--identity", "ACME", "--certificate", hosts["sha256"],
               "--activate-at", at)  # fmt: skip
    for thread in (*partners, prober):
        thread.join(timeout=120)

    approve_all(servers, tally, PARTNERS)
    sent = wait_until_sent(env)

    assert tally.failures == []
    assert all(not errors for errors in tally.server_errors().values()), tally.server_errors()
    assert Counter(tally.statuses["upload"]) == {201: PARTNERS}, tally.statuses["upload"]
    assert Counter(tally.statuses["approve"]) == {302: PARTNERS}
    # One limit for both hosts: the first five wrong look-ups are answered, the rest refused.
    assert Counter(limited) == {404: INVALID_LINK_LIMIT, 429: INVALID_LINK_LIMIT}, limited
    engine = make_engine(env["PORTAL_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            statuses = Counter(connection.scalars(select(Submission.status)).all())
            effects = connection.execute(
                select(SideEffect.key, func.count()).group_by(SideEffect.key)
            ).all()
            undone = connection.scalar(
                select(func.count()).select_from(SideEffect).where(SideEffect.done_at.is_(None))
            )
    finally:
        engine.dispose()
    assert statuses == {"approved": PARTNERS}  # each upload once, each approved once
    assert all(count == 1 for _, count in effects)
    print(f"\n{len(effects)} side effects, {undone} not yet due; {sent} emails sent")
    # Every message reached the SMTP server exactly once, whichever scheduler sent it.
    received = Counter(
        (tuple(sorted(e.rcpt_tos)), message_from_bytes(e.content, policy=policy.default)["Subject"])
        for e in handler.messages
    )
    assert len(handler.messages) == sent
    assert all(count == 1 for count in received.values()), received.most_common(3)
    campaign_mails = [key for key in received if "changes its AS2 certificate" in key[1]]
    assert len(campaign_mails) == PARTNERS
