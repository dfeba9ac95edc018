"""Share links against committed data: concurrent uploads and the page's curl line, run for real."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal import create_app
from portal.database import make_engine
from portal.extensions import db, link_signer
from portal.migrate import upgrade
from portal.models import ShareLink, Submission
from portal.services import links
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure, test_settings


@pytest.fixture
def live_app(tmp_path: Path, fresh_databases) -> Iterator[Flask]:
    """An app on its own migrated database; requests commit for real."""
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(test_settings(tmp_path, url))
    yield app
    with app.app_context():
        db.engine.dispose()


def _link(app: Flask, max_uploads: int) -> tuple[str, str]:
    with app.app_context():
        partner = factories.partner(db.session)
        link, token = links.create_link(
            db.session, factories.ACTOR, link_signer(), partner, can_download=True,
            can_upload=True, lifetime=timedelta(days=1), max_uploads=max_uploads, now=utcnow(),
        )  # fmt: skip
        db.session.commit()
        return link.id, token


def test_twenty_parallel_uploads_against_a_one_upload_link(live_app: Flask) -> None:
    link_id, token = _link(live_app, max_uploads=1)
    now = utcnow()
    bodies = [certfactory.pem(certfactory.make_cert(now=now, days=400)[0]) for _ in range(20)]
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []
    lock = threading.Lock()

    def upload(body: bytes) -> None:
        client = live_app.test_client()
        barrier.wait()
        response = client.post(f"/s/{token}/certificate", data=body)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=upload, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [201] + [409] * 19
    with live_app.app_context():
        assert db.session.get(ShareLink, link_id).uploads_used == 1
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_line_printed_on_the_page_works(live_app: Flask, tmp_path: Path) -> None:
    import waitress

    server = waitress.create_server(live_app, host="127.0.0.1", port=0, threads=4)
    reconfigure(live_app, BASE_URL=f"http://127.0.0.1:{server.effective_port}")
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        _link_id, token = _link(live_app, max_uploads=2)
        page = live_app.test_client().get(f"/s/{token}").get_data(as_text=True)
        lines = re.findall(r'<pre class="curl"><code>(.*?)</code></pre>', page, re.S)
        feed, command = (shlex.split(html.unescape(line)) for line in lines)
        assert feed[0] == command[0] == "curl"
        followed = subprocess.run(  # noqa: S603  (the command our page prints, to our own server)
            feed, capture_output=True, text=True, timeout=60, check=False
        )
        assert followed.returncode == 0, followed.stderr
        assert set(json.loads(followed.stdout)["certificates"]) == {"signing", "encryption"}
        cert, _ = certfactory.make_cert(now=utcnow(), days=400, key_size=3072)
        (tmp_path / "partner-cert.pem").write_bytes(certfactory.pem(cert))
        done = subprocess.run(  # noqa: S603  (the command our page prints, to our own server)
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["status"] == "received"
        assert answer["report"]["acceptable"] is True
        assert answer["fingerprint_sha256"] == answer["report"]["certificate"]["fingerprint_sha256"]
    finally:
        server.close()
        serving.join(timeout=10)
