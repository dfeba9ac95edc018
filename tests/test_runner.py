"""`portal run-due`: side effects of time passing, each performed exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from portal import create_app, jobs
from portal.database import make_engine
from portal.extensions import db, keyring
from portal.migrate import upgrade
from portal.models import AuditEvent, Certificate, OutboxMessage, SideEffect
from portal.services import approvals, links, runner
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure, test_settings


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def approved_partner_certificate(session, approver, *, activate_in: timedelta):
    partner = factories.partner(session)
    link = factories.share_link(session, partner, can_download=False, max_uploads=1)
    submission = factories.submission(session, link)
    now = utcnow()
    certificate = approvals.approve_submission(
        session, Actor.for_user(approver), submission, activate_at=now, now=now
    )
    certificate.activate_at = now + activate_in
    session.flush()
    return certificate, link


def notices(session) -> int:
    return count(session, AuditEvent, AuditEvent.action == "certificate.activation_noticed")


def test_activation_is_announced_once(session, approver) -> None:
    certificate, _link = approved_partner_certificate(
        session, approver, activate_in=-timedelta(minutes=1)
    )
    first = jobs.run_due(session, now=utcnow(), runner="test")
    assert first.performed >= 1
    assert notices(session) == 1
    messages = session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedupe_key.like("certificate.activated:%"))
    ).all()
    recipients = {tuple(m.recipients) for m in messages}
    assert (approver.email,) in recipients
    assert tuple(certificate.partner.contact_emails) in recipients
    second = jobs.run_due(session, now=utcnow(), runner="test")
    assert second.performed == 0
    assert notices(session) == 1


def test_nothing_happens_before_the_time_and_everything_after(session, approver) -> None:
    approved_partner_certificate(session, approver, activate_in=timedelta(hours=2))
    now = utcnow()
    jobs.run_due(session, now=now, runner="test")
    assert notices(session) == 0
    jobs.run_due(session, now=now + timedelta(hours=2, seconds=1), runner="test")
    assert notices(session) == 1


def test_a_certificate_withdrawn_before_the_run_is_not_announced(session, approver) -> None:
    certificate, _ = approved_partner_certificate(session, approver, activate_in=timedelta(hours=1))
    later = utcnow() + timedelta(hours=2)
    runner.plan(session, now=later)  # planned while still scheduled
    certificate.withdrawn_at = utcnow()
    session.flush()
    jobs.run_due(session, now=later, runner="test")
    assert notices(session) == 0


def test_a_link_whose_purpose_is_fulfilled_is_revoked(session, approver) -> None:
    _certificate, link = approved_partner_certificate(
        session, approver, activate_in=-timedelta(seconds=1)
    )
    jobs.run_due(session, now=utcnow(), runner="test")
    session.refresh(link)
    assert link.revoked_at is not None
    assert count(session, AuditEvent, AuditEvent.summary.like("%purpose is fulfilled%")) == 1


def test_a_failing_effect_is_kept_for_later_and_does_not_stop_others(
    session, approver, monkeypatch
) -> None:
    approved_partner_certificate(session, approver, activate_in=-timedelta(seconds=1))
    approved_partner_certificate(session, approver, activate_in=-timedelta(seconds=1))
    real = runner.PERFORMERS[runner.ACTIVATED]
    calls = []

    def flaky(session_, effect, now):
        calls.append(effect.key)
        if len(calls) == 1:
            raise RuntimeError("mail relay down")
        real(session_, effect, now)

    monkeypatch.setitem(runner.PERFORMERS, runner.ACTIVATED, flaky)
    result = jobs.run_due(session, now=utcnow(), runner="test")
    assert result.failed == 1
    assert notices(session) == 1
    session.expire_all()
    failed = session.scalars(select(SideEffect).where(SideEffect.done_at.is_(None))).one()
    assert failed.last_error == "RuntimeError: mail relay down"
    assert failed.attempts == 1
    jobs.run_due(session, now=utcnow(), runner="test")
    assert notices(session) == 2


def test_a_run_killed_halfway_loses_nothing_and_repeats_nothing(session, approver) -> None:
    for _ in range(3):
        approved_partner_certificate(session, approver, activate_in=-timedelta(seconds=1))
    now = utcnow()
    runner.plan(session, now=now)
    session.commit()
    # A runner performs a batch, then dies before committing it.
    jobs.perform_batch(session, now=now, runner="killed", batch=2, skip=set())
    session.rollback()
    assert notices(session) == 0
    jobs.run_due(session, now=now, runner="next")
    assert notices(session) == 3
    assert count(session, SideEffect, SideEffect.done_by == "killed") == 0


def test_run_due_command_performs_and_sends(app, runner, session, approver, smtp_server) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    _certificate, link = approved_partner_certificate(
        session, approver, activate_in=-timedelta(seconds=1)
    )
    links.email_link(session, factories.ACTOR, link, sender_org="Acme")
    session.commit()
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    assert "performed" in result.output
    assert notices(session) == 1
    assert count(session, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0
    sent = count(session, OutboxMessage)
    assert len(handler.messages) == sent
    bodies = [m.content.decode() for m in handler.messages]
    link_mail = next(b for b in bodies if "Open this link" in b)
    assert "[[link:" not in link_mail
    assert f"{app.config['BASE_URL']}/s/{link.id}." in link_mail  # token made at delivery
    again = runner.invoke(args=["run-due"])
    assert "sent 0 emails" in again.output
    assert len(handler.messages) == sent


def test_unreachable_smtp_keeps_messages_for_the_next_run(app, runner, session, approver) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port)
    approved_partner_certificate(session, approver, activate_in=-timedelta(seconds=1))
    session.commit()
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 1
    assert "could not be sent" in result.output
    session.expire_all()
    waiting = session.scalars(select(OutboxMessage)).all()
    assert waiting
    assert all(m.sent_at is None and m.last_error for m in waiting)


def test_scheduler_runs_the_given_number_of_times(app, runner, smtp_server) -> None:
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server[1])
    result = runner.invoke(args=["scheduler", "--interval", "1", "--iterations", "2"])
    assert result.exit_code == 0, result.output


# Several runners at once ------------------------------------------------------------------

DUE = 1000


def seed_due_certificates(app, count_: int) -> None:
    """COUNT_ partner certificates that came into force a minute ago (rows written in bulk)."""
    with app.app_context():
        session = db.session
        factories.user(session, role="approver", password="a long test password")
        partner = factories.partner(session)
        cert, _ = certfactory.make_cert(now=utcnow(), days=400)
        info_der = certfactory.der(cert)
        now = utcnow()
        rows = [
            {
                "partner_id": partner.id,
                "usage": "both",
                "der": info_der,
                "chain_pem": "",
                "sha256": f"{i:064x}",
                "sha1": f"{i:040x}",
                "subject": "CN=SEED",
                "issuer": "CN=SEED",
                "serial": str(i),
                "not_before": now - timedelta(days=1),
                "not_after": now + timedelta(days=400),
                "key_type": "RSA",
                "key_size": 2048,
                "source": "uploaded",
                "activate_at": now - timedelta(minutes=1),
                "created_at": now,
            }
            for i in range(count_)
        ]
        session.execute(insert(Certificate), rows)
        session.commit()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [4 if os.environ.get("PORTAL_TEST_DATABASE_URL") else 2])
def test_runners_started_together_perform_each_effect_once(
    tmp_path: Path, fresh_databases, smtp_server, processes: int
) -> None:
    handler, port = smtp_server
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = test_settings(tmp_path, url)
    app = create_app(settings)
    seed_due_certificates(app, DUE)
    env = {
        **os.environ,
        "PORTAL_INSTANCE_PATH": str(tmp_path / "runner-instance"),
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEY": settings["SECRET_KEY"],
        "PORTAL_KEY_ENCRYPTION_KEYS": settings["KEY_ENCRYPTION_KEYS"][0],
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(port),
        "PORTAL_BASE_URL": "https://certs.example.com",
    }
    script = str(Path(sys.executable).parent / "portal")
    started = [
        subprocess.Popen(  # noqa: S603  (our own script, fixed arguments)
            [script, "run-due"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    outputs = [process.communicate(timeout=300) for process in started]
    assert [process.returncode for process in started] == [0] * processes, outputs
    with app.app_context():
        session = db.session
        assert count(session, SideEffect) == DUE
        assert count(session, SideEffect, SideEffect.done_at.is_(None)) == 0
        assert notices(session) == DUE  # audit rows have no unique key: a repeat would show
        assert count(session, OutboxMessage) == 2 * DUE  # staff and partner notice for each
        assert count(session, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0
        db.engine.dispose()
    performed = sum(int(out.split("performed ")[1].split(",")[0]) for out, _ in outputs)
    assert performed == DUE
    assert len(handler.messages) == 2 * DUE  # each email sent once


def test_the_activation_notice_reaches_each_partner_in_its_language(session, approver) -> None:
    identity = factories.identity(session)
    factories.partner(
        session, identity, name="Berlin Trading", as2_id="BERLIN", language="de",
        contact_emails=["edi@berlin.example"],
    )  # fmt: skip
    factories.partner(
        session, identity, name="Tokyo Goods", as2_id="TOKYO", contact_emails=["edi@tokyo.example"],
    )  # fmt: skip
    certificate = factories.identity_certificate(session, keyring(), identity)
    certificate.activate_at = utcnow() - timedelta(minutes=1)
    session.flush()

    jobs.run_due(session, now=utcnow(), runner="test")

    messages = {
        tuple(m.recipients): m
        for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedupe_key.like("certificate.activated:%"))
        )
    }
    assert (approver.email,) in messages
    assert messages[("edi@berlin.example",)].subject.startswith("AS2-Zertifikat jetzt in Kraft")
    assert messages[("edi@tokyo.example",)].subject.startswith("AS2 certificate now in force")
    assert messages[(approver.email,)].subject.startswith("AS2 certificate now in force")
