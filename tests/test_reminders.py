"""Reminders through the runner: campaign partners who have not acted, and the staff digest."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from portal import create_app, jobs
from portal.database import make_engine
from portal.domain import campaigns as rules
from portal.extensions import db, keyring
from portal.migrate import upgrade
from portal.models import AuditEvent, CampaignPartner, Certificate, OutboxMessage, SideEffect
from portal.services import acknowledgements, campaigns, reminders, runner
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure, test_settings

DAY = timedelta(days=1)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def reminders_sent(session) -> list[tuple[str, tuple[str, ...]]]:
    """(dedupe key, recipients) of every reminder email in the outbox, by key."""
    rows = session.execute(
        select(OutboxMessage.dedupe_key, OutboxMessage.recipients)
        .where(OutboxMessage.dedupe_key.like("reminder:%"))
        .order_by(OutboxMessage.dedupe_key)
    )
    return [(key, tuple(recipients)) for key, recipients in rows]


def offsets_sent(session, member: CampaignPartner) -> list[int]:
    return sorted(
        int(key.rsplit(":", 1)[1])
        for key, _ in reminders_sent(session)
        if key.startswith(f"reminder:{member.id}:")
    )


def seed_rotation(session, *, start: datetime, at: datetime, request_upload: bool = False):
    """Our identity, partners Berlin and Tokyo (reachable) and Silent (no contact); a
    campaign started at START switching at AT."""
    identity = factories.identity(session, organisation="Acme Corp")
    certificate = factories.identity_certificate(session, keyring(), identity)
    berlin = factories.partner(
        session, identity, name="Berlin Trading", as2_id="BERLIN",
        contact_emails=["edi@berlin.example", "ops@berlin.example"], timezone="Europe/Berlin",
    )  # fmt: skip
    factories.partner(
        session, identity, name="Tokyo Goods", as2_id="TOKYO",
        contact_emails=["edi@tokyo.example"], timezone="Asia/Tokyo",
    )  # fmt: skip
    silent = factories.partner(session, identity, name="Silent Ltd", as2_id="SILENT")
    silent.contacts.clear()
    session.flush()
    wanted = campaigns.StartRequest(
        identity=identity, sha256=certificate.sha256, activate_at=at,
        request_upload=request_upload,
    )  # fmt: skip
    campaign = campaigns.start(session, factories.ACTOR, wanted, now=start)
    session.commit()
    rows = session.scalars(
        select(CampaignPartner).where(CampaignPartner.campaign_id == campaign.id)
    ).all()
    assert berlin.id in {r.partner_id for r in rows}
    return campaign, {row.partner.as2_id: row for row in rows}


@pytest.fixture
def moment() -> datetime:
    """A switch time 20 days ahead, on the minute."""
    return (utcnow() + 20 * DAY).replace(second=0, microsecond=0)


def run(session, now: datetime, name: str = "test") -> jobs.RunResult:
    return jobs.run_due(session, now=now, runner=name)


# The offsets ---------------------------------------------------------------------------------


def test_reminders_at_14_3_and_1_days_as_the_clock_moves(
    app, runner, session, clock, moment
) -> None:
    at = moment
    campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    berlin, tokyo, silent = members["BERLIN"], members["TOKYO"], members["SILENT"]

    clock.set(at - 14 * DAY - timedelta(minutes=1))
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert reminders_sent(session) == []

    clock.set(at - 14 * DAY)
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert reminders_sent(session) == [
        (f"reminder:{berlin.id}:14", ("edi@berlin.example", "ops@berlin.example")),
        (f"reminder:{tokyo.id}:14", ("edi@tokyo.example",)),
    ]
    assert runner.invoke(args=["run-due"]).exit_code == 0  # again: nothing new
    clock.advance(DAY)
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert len(reminders_sent(session)) == 2

    for offset in (3, 1):
        clock.set(at - offset * DAY + timedelta(minutes=5))
        assert runner.invoke(args=["run-due"]).exit_code == 0
    clock.set(at + timedelta(minutes=1))  # after T: none
    assert runner.invoke(args=["run-due"]).exit_code == 0

    assert offsets_sent(session, berlin) == [1, 3, 14]
    assert offsets_sent(session, tokyo) == [1, 3, 14]
    assert offsets_sent(session, silent) == []  # no contact: never reminded
    assert len(reminders_sent(session)) == 6
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "campaign.reminded")
    ).all()
    assert len(events) == 6
    assert {e.details["campaign_id"] for e in events} == {campaign.id}

    message = session.scalar(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == f"reminder:{berlin.id}:3")
    )
    assert message is not None
    assert message.link_id == berlin.link_id
    assert (
        message.subject
        == f"Reminder: Acme Corp changes its AS2 certificate on {at:%Y-%m-%d %H:%M} UTC"
    )


def test_run_twice_and_two_runners_remind_once(session, moment) -> None:
    at = moment
    _campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    now = at - 3 * DAY
    runner.plan(session, now=now)
    session.commit()
    runner.plan(session, now=now)  # a second runner plans the same: nothing new
    session.commit()
    # Runner A claims a batch but dies before committing; B runs; A's next run finds nothing.
    jobs.perform_batch(session, now=now, runner="A", batch=1, skip=set())
    session.rollback()
    run(session, now, "B")
    run(session, now, "A")
    run(session, now + timedelta(minutes=1), "B")
    assert offsets_sent(session, members["BERLIN"]) == [3]
    assert offsets_sent(session, members["TOKYO"]) == [3]
    assert count(session, AuditEvent, AuditEvent.action == "campaign.reminded") == 2


def test_no_reminder_after_the_partner_acknowledged(session, moment) -> None:
    at = moment
    _campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    berlin, tokyo = members["BERLIN"], members["TOKYO"]
    acknowledgements.acknowledge(
        session, factories.ACTOR, berlin.link, certificate=None, installed_on=None,
        contact_name="Eve", now=at - 15 * DAY,
    )  # fmt: skip
    session.commit()
    run(session, at - 14 * DAY)
    assert offsets_sent(session, berlin) == []
    assert offsets_sent(session, tokyo) == [14]

    # Planned before Tokyo acknowledged, performed after: checked again when performing.
    runner.plan(session, now=at - 3 * DAY)
    session.commit()
    acknowledgements.acknowledge(
        session, factories.ACTOR, tokyo.link, certificate=None, installed_on=None,
        contact_name=None, now=at - 3 * DAY,
    )  # fmt: skip
    session.commit()
    run(session, at - 3 * DAY)
    run(session, at - DAY)
    assert offsets_sent(session, tokyo) == [14]


def test_upload_campaign_reminds_until_the_certificate_came_too(session, moment) -> None:
    from tests.schedulehelpers import receive

    at = moment
    _campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at, request_upload=True)
    berlin, tokyo = members["BERLIN"], members["TOKYO"]
    for member in (berlin, tokyo):
        acknowledgements.acknowledge(
            session, factories.ACTOR, member.link, certificate=None, installed_on=None,
            contact_name=None, now=at - 16 * DAY,
        )  # fmt: skip
    receive(session, tokyo.link, now=at - 16 * DAY)
    session.commit()
    run(session, at - 14 * DAY)
    assert offsets_sent(session, berlin) == [14]  # acknowledged, but its certificate is due
    assert offsets_sent(session, tokyo) == []
    body = session.scalar(
        select(OutboxMessage.body).where(OutboxMessage.dedupe_key == f"reminder:{berlin.id}:14")
    )
    assert "We still wait for your new AS2 certificate" in str(body)


def test_no_reminder_for_a_revoked_link(session, moment) -> None:
    at = moment
    campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    runner.plan(session, now=at - 14 * DAY)  # planned while the link worked
    session.commit()
    campaigns.revoke(session, factories.ACTOR, campaign, members["TOKYO"].partner_id,
                     now=at - 14 * DAY)  # fmt: skip
    session.commit()
    run(session, at - 14 * DAY)
    run(session, at - 3 * DAY)
    assert offsets_sent(session, members["TOKYO"]) == []
    assert offsets_sent(session, members["BERLIN"]) == [3, 14]
    unsent = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "campaign.reminder_unsent")
    ).all()
    assert [e.summary for e in unsent] == [
        f"Campaign #{campaign.id}: no reminder 14 days before the switch: "
        "its campaign link no longer works"
    ]


def test_a_campaign_started_two_days_before_t_sends_only_the_one_day_reminder(
    session, moment
) -> None:
    at = moment
    _campaign, members = seed_rotation(session, start=at - 2 * DAY, at=at)
    berlin = members["BERLIN"]
    run(session, at - 2 * DAY)
    run(session, at - 2 * DAY + timedelta(hours=12))
    assert reminders_sent(session) == []
    skipped = session.scalars(
        select(SideEffect.key).where(SideEffect.done_by == reminders.SKIPPED)
    ).all()
    assert sorted(k for k in skipped if k.startswith(f"reminder:{berlin.id}:")) == [
        f"reminder:{berlin.id}:14",
        f"reminder:{berlin.id}:3",
    ]
    run(session, at - DAY)
    assert offsets_sent(session, berlin) == [1]
    assert len(reminders_sent(session)) == 2  # Berlin and Tokyo, once each


def test_a_runner_down_for_days_sends_only_the_latest_reminder(session, moment) -> None:
    at = moment
    _campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    run(session, at - DAY + timedelta(hours=1))  # first run since the start
    run(session, at - timedelta(hours=1))
    assert offsets_sent(session, members["BERLIN"]) == [1]
    assert offsets_sent(session, members["TOKYO"]) == [1]


def test_a_reminder_planned_but_performed_after_t_is_not_sent(session, moment) -> None:
    at = moment
    seed_rotation(session, start=at - 20 * DAY, at=at)
    runner.plan(session, now=at - DAY)
    session.commit()
    run(session, at + timedelta(seconds=1))
    assert reminders_sent(session) == []


def test_offsets_come_from_the_setting(app, runner, session, clock, moment) -> None:
    at = moment
    _campaign, members = seed_rotation(session, start=at - 20 * DAY, at=at)
    reconfigure(app, REMINDER_OFFSETS_DAYS="10")
    clock.set(at - 14 * DAY)
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert reminders_sent(session) == []
    clock.set(at - 10 * DAY)
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert offsets_sent(session, members["BERLIN"]) == [10]


def test_reminder_step_rules() -> None:
    t = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    offsets = (14, 3, 1)
    started = t - 20 * DAY
    assert rules.reminder_step(offsets, activate_at=t, added_at=started, now=t - 15 * DAY) == (
        rules.ReminderStep(send=None, skip=(), until=None)
    )
    assert rules.reminder_step(offsets, activate_at=t, added_at=started, now=t - 3 * DAY) == (
        rules.ReminderStep(send=3, skip=(14,), until=t - DAY)
    )
    assert rules.reminder_step(offsets, activate_at=t, added_at=started, now=t - DAY) == (
        rules.ReminderStep(send=1, skip=(14, 3), until=t)
    )
    assert rules.reminder_step(offsets, activate_at=t, added_at=started, now=t) == (
        rules.ReminderStep(send=None, skip=(), until=None)
    )
    late = t - 2 * DAY
    assert rules.reminder_step(offsets, activate_at=t, added_at=late, now=late) == (
        rules.ReminderStep(send=None, skip=(14, 3), until=None)
    )
    assert rules.reminder_offsets("14, 3,1,3") == (14, 3, 1)
    assert rules.reminder_offsets(7) == (7,)
    assert rules.reminder_offsets("") == ()
    for bad in ("0", "x", "400", True):
        with pytest.raises(ValueError):  # noqa: PT011  (int() and ours: no common message)
            rules.reminder_offsets(bad)


def test_bad_offsets_setting_is_refused(tmp_path, database_url) -> None:
    from portal.config import ConfigError

    with pytest.raises(ConfigError, match="PORTAL_REMINDER_OFFSETS_DAYS"):
        create_app(test_settings(tmp_path, database_url, REMINDER_OFFSETS_DAYS="3,soon"))
    with pytest.raises(ConfigError, match="PORTAL_DIGEST_ENABLED"):
        create_app(test_settings(tmp_path, database_url, DIGEST_ENABLED="maybe"))


# Delivered over real SMTP by two runners at once ---------------------------------------------


def test_two_runner_processes_deliver_each_reminder_once(
    tmp_path: Path, fresh_databases, smtp_server
) -> None:
    handler, port = smtp_server
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = test_settings(tmp_path, url)
    app = create_app(settings)
    now = utcnow().replace(microsecond=0)
    at = now + 2 * DAY + timedelta(hours=12)  # the 3-day reminder became due 12 hours ago
    with app.app_context():
        seed_rotation(db.session, start=now - 2 * DAY, at=at)
        db.session.commit()
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
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in started]
    assert [process.returncode for process in started] == [0, 0], outputs
    with app.app_context():
        db.engine.dispose()
    delivered = [message_from_bytes(e.content, policy=policy.default) for e in handler.messages]
    # A subject longer than a header line comes back folded: compare it stripped.
    remind = [m for m in delivered if str(m["Subject"]).strip().startswith("Reminder:")]
    assert sorted(str(m["To"]) for m in remind) == [
        "edi@berlin.example, ops@berlin.example",
        "edi@tokyo.example",
    ]
    body = remind[0].get_body(preferencelist=("plain",)).get_content()
    assert "in 3 days" in body
    assert "https://certs.example.com/s/" in body
    assert f"that is {at:%Y-%m-%d %H:%M} UTC" in body
    started_mails = [m for m in delivered if m not in remind]
    assert len(started_mails) == 2  # the campaign's own emails, once each


# The staff's daily digest --------------------------------------------------------------------


@pytest.fixture
def expiring(session, make_user) -> dict[str, Any]:
    """Staff of every role, and certificates expiring at known distances."""
    now = utcnow().replace(microsecond=0)
    staff = {role: make_user(role) for role in ("admin", "operator", "approver", "viewer")}
    make_user("admin").is_enabled = False
    ours = factories.identity(session, as2_id="OURS")
    mine = factories.identity_certificate(session, keyring(), ours, days=20)
    mine.activate_at = now - 100 * DAY
    names = ("Soon GmbH", "Later Ltd", "Replaced Inc", "Far Away Co", "Tomorrow SA")
    partners = {name: factories.partner(session, ours, name=name) for name in names}
    factories.partner_certificate_row(
        session, partners["Soon GmbH"], now=now, expires_in=5 * DAY, n=1
    )
    factories.partner_certificate_row(
        session, partners["Later Ltd"], now=now, expires_in=60 * DAY, n=2
    )
    factories.partner_certificate_row(
        session, partners["Replaced Inc"], now=now, expires_in=10 * DAY, n=3
    )
    factories.partner_certificate_row(
        session, partners["Far Away Co"], now=now, expires_in=200 * DAY, n=4
    )
    factories.partner_certificate_row(
        session, partners["Tomorrow SA"], now=now, expires_in=DAY / 2, n=5
    )
    # Replaced Inc's successor is scheduled: not in the digest.
    session.execute(
        insert(Certificate),
        [
            {
                "partner_id": partners["Replaced Inc"].id, "usage": "both",
                "der": b"x", "chain_pem": "", "sha256": f"{6:064x}", "sha1": f"{6:040x}",
                "subject": "CN=X", "issuer": "CN=X", "serial": "6",
                "not_before": now, "not_after": now + 400 * DAY, "key_type": "RSA",
                "source": "uploaded", "activate_at": now + 5 * DAY, "created_at": now,
            }
        ],
    )  # fmt: skip
    session.commit()
    return {"now": now, "staff": staff, "ours": ours}


def digests(session) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.dedupe_key.like("digest:%"))
            .order_by(OutboxMessage.id)
        )
    )


def test_digest_once_a_day_to_enabled_staff_by_bucket(session, expiring) -> None:
    now, staff = expiring["now"], expiring["staff"]
    run(session, now)
    run(session, now)
    run(session, min(now + timedelta(hours=1), now.replace(hour=23, minute=59, second=59)))
    (digest,) = digests(session)
    assert digest.dedupe_key == f"digest:{now:%Y-%m-%d}"
    assert sorted(digest.recipients) == sorted(
        staff[role].email for role in ("admin", "operator", "approver")
    )
    assert digest.subject.startswith("Certificates expiring with no replacement scheduled: 4 ")
    body = str(digest.body)
    sections = {
        heading: body.split(heading)[1].split("Within")[0]
        for heading in ("Within 1 day:", "Within 7 days:", "Within 30 days:", "Within 90 days:")
    }
    assert "Tomorrow SA (signing, encryption)" in sections["Within 1 day:"]
    assert "Soon GmbH" in sections["Within 7 days:"]
    assert f"our {expiring['ours'].name}" in sections["Within 30 days:"]
    assert "Later Ltd" in sections["Within 90 days:"]
    assert "Within 14 days:" not in body
    assert "Replaced Inc" not in body
    assert "Far Away Co" not in body
    assert count(session, AuditEvent, AuditEvent.action == "digest.sent") == 1

    run(session, now + DAY)  # the next day: the next digest
    assert len(digests(session)) == 2


def test_digest_nothing_to_list_sends_nothing(session, make_user) -> None:
    make_user("admin")
    now = utcnow()
    run(session, now)
    assert digests(session) == []
    assert count(session, SideEffect, SideEffect.key.like("digest:%")) == 0


def test_digest_can_be_turned_off(app, runner, session, clock, expiring) -> None:
    reconfigure(app, DIGEST_ENABLED=False)
    clock.set(expiring["now"])
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert digests(session) == []


def test_digest_delivered_over_smtp(app, runner, session, clock, expiring, smtp_server) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    clock.set(expiring["now"])
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    delivered = [message_from_bytes(e.content, policy=policy.default) for e in handler.messages]
    (digest,) = [m for m in delivered if str(m["Subject"]).startswith("Certificates expiring")]
    assert "Within 7 days:" in digest.get_body(preferencelist=("plain",)).get_content()
    (envelope,) = [e for e in handler.messages if b"Certificates expiring" in e.content]
    assert len(envelope.rcpt_tos) == 3
