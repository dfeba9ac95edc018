"""Regressions for defects a review found: hostile dates, huge ids, role checks on the CLI,
a poisoned outbox message, rate-limit budget shared by routes, double uploads in parallel."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import create_app, jobs
from portal.extensions import db, link_signer
from portal.models import OutboxMessage, ShareLink, Submission
from portal.services import links, outbox
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import test_settings
from tests.test_links_live import _link, live_app  # noqa: F401  (fixture reused)


def token_for(session, **fields):
    partner = factories.partner(session, timezone="Asia/Tokyo")
    _link_row, token = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=1), max_uploads=3, now=utcnow(), **fields,
    )  # fmt: skip
    return partner, token


@pytest.mark.parametrize(
    ("date", "time", "zone"),
    [("9999-12-31", "23:00", "UTC"), ("0001-01-01", "00:00", "Etc/GMT-14")],
)
def test_extreme_window_dates_are_refused_not_crashed(client, session, date, time, zone) -> None:
    _partner, token = token_for(session)
    response = client.post(
        f"/s/{token}/window", data={"date": date, "time": time, "timezone": zone}
    )
    assert response.status_code == 422
    assert client.get(f"/s/{token}").status_code == 200


def test_huge_ids_are_not_found(client, session, viewer_client) -> None:
    _partner, token = token_for(session)
    assert client.post(f"/s/{token}/window/999999999999999999999/accept").status_code == 404
    assert viewer_client.get("/partners/999999999999999999999").status_code == 404
    assert viewer_client.get("/certificates/0").status_code == 404


def test_cli_link_commands_check_the_role_of_as(runner, session, make_user) -> None:
    viewer = make_user("viewer")
    partner = factories.partner(session)
    session.commit()
    created = runner.invoke(
        args=["link", "create", "--partner", partner.as2_id, "--as", viewer.email]
    )
    assert created.exit_code == 1
    assert "may not do this" in created.output
    assert session.scalar(select(func.count()).select_from(ShareLink)) == 0


def test_one_bad_outbox_message_does_not_block_the_rest(session) -> None:
    outbox.queue_email(session, recipients=["a@example.com"], subject="first", body="x")
    outbox.queue_email(session, recipients=["b@example.com"], subject="Line\nbreak", body="y")
    session.commit()
    sent: list[str] = []

    def send(recipients, subject, body, html):
        if subject == "first":
            raise ValueError("boom")  # not an SMTP error: still recorded, not fatal
        sent.append(subject)

    result = jobs.deliver_outbox(session, send, lambda link_id: "", now=utcnow())
    assert (result.sent, result.failed) == (1, 1)
    assert result.last_error == "ValueError: boom"
    assert sent == ["Line break"]  # line breaks never reach a header
    session.expire_all()
    failed = session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))).one()
    assert failed.last_error == "ValueError: boom"


def test_invalid_link_budget_is_shared_by_all_partner_routes(
    tmp_path: Path, database_url, connection
) -> None:
    app = create_app(test_settings(tmp_path, database_url, RATELIMIT_INVALID_LINKS="3 per minute"))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    client = app.test_client()
    assert client.get("/s/bad").status_code == 404
    assert client.get("/s/bad/window.ics").status_code == 404
    assert client.get("/s/bad/certificates/aa.pem").status_code == 404
    assert client.post("/s/bad/certificate", data=b"x").status_code == 429


def test_parallel_uploads_of_the_same_file_store_it_once(live_app) -> None:  # noqa: F811
    link_id, token = _link(live_app, max_uploads=5)
    body = certfactory.pem(certfactory.make_cert(now=utcnow(), days=400)[0])
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def upload() -> None:
        client = live_app.test_client()
        barrier.wait()
        statuses.append(client.post(f"/s/{token}/certificate", data=body).status_code)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [200] * 7 + [201]
    with live_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
        assert db.session.get(ShareLink, link_id).uploads_used == 1
