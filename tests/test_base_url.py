"""With PORTAL_BASE_URL unset, links point at the host and port being served, not at a
default that is right for nobody; commands say which address they assume."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import Connection, select

from portal import create_app
from portal.extensions import db
from portal.models import Partner
from tests import factories
from tests.conftest import reconfigure, test_settings
from tests.test_error_pages import new_token

SERVED = "http://127.0.0.1:5611"


def unset_base_url_app(tmp_path: Path, database_url: str, connection: Connection) -> Flask:
    app = create_app(test_settings(tmp_path, database_url, BASE_URL=None))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


def test_staff_link_urls_and_mailto_follow_the_served_address(app, session, client_as) -> None:
    reconfigure(app, BASE_URL=None)
    token = new_token(session, app)
    partner = session.scalars(select(Partner).order_by(Partner.id.desc())).first()
    # The test client serves http://localhost (port 80): links must say exactly that.
    text = client_as("operator").get(f"/partners/{partner.id}").get_data(as_text=True)
    assert f"http://localhost/s/{token}" in text
    assert "localhost:5000" not in text
    assert "http%3A//localhost/s/" in text  # inside the mailto body


def test_partner_curl_line_follows_the_served_address(app, session, client) -> None:
    reconfigure(app, BASE_URL=None)
    token = new_token(session, app)
    page = client.get(f"/s/{token}", base_url=SERVED).get_data(as_text=True)
    assert f'"{SERVED}/s/{token}/certificate?usage=both"' in page


def test_configured_base_url_wins_over_the_served_address(app, session, client) -> None:
    token = new_token(session, app)
    page = client.get(f"/s/{token}", base_url=SERVED).get_data(as_text=True)
    assert f'"http://portal.test/s/{token}/certificate?usage=both"' in page


def test_link_create_without_base_url_says_which_address_it_assumes(
    tmp_path: Path, database_url: str, connection: Connection
) -> None:
    app = unset_base_url_app(tmp_path, database_url, connection)
    with app.app_context():
        partner = factories.partner(db.session)
        result = app.test_cli_runner().invoke(args=["link", "create", "--partner", partner.as2_id])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("http://127.0.0.1:5000/s/")
    assert "PORTAL_BASE_URL is not set" in result.stderr


def test_serve_start_up_line_says_which_base_url_links_use(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path / "instance")
    server = subprocess.Popen(  # noqa: S603  (our own CLI, on loopback)
        [sys.executable, "-m", "flask", "--app", "portal", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while time.monotonic() < deadline and not any("Links use" in line for line in lines):
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line)
        output = "".join(lines)
        assert re.search(rf"Links use http://127\.0\.0\.1:{port} ", output), output
        assert "localhost:5000" not in output
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_run_due_with_a_relay_but_no_base_url_keeps_emails_waiting(app, runner, session) -> None:
    from portal.models import OutboxMessage
    from portal.services import outbox

    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=25, BASE_URL=None)
    outbox.queue_email(session, recipients=["edi@partner.example"], subject="Hello", body="Hi")
    session.commit()
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 1
    assert "PORTAL_BASE_URL is not set" in result.stderr
    message = session.scalars(select(OutboxMessage)).one()
    assert (message.sent_at, message.attempts) == (None, 0)
