"""The shipped migrations are the models, with one head, and `portal init` is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, column, insert, select, table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import jobs
from portal.database import make_engine
from portal.migrate import alembic_config, current_revision, head_revisions, upgrade
from portal.models import Base, Identity, OutboxMessage, Partner, ShareLink, UTCDateTime
from portal.services import outbox


def test_there_is_exactly_one_head() -> None:
    assert len(head_revisions()) == 1


def test_migrations_produce_exactly_the_models(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        before, after = upgrade(engine)
        assert before is None
        assert after == head_revisions()[0]
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        upgrade(engine)
        before, after = upgrade(engine)
        assert before == after == current_revision(engine) == head_revisions()[0]
    finally:
        engine.dispose()


def _upgrade_to(engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def test_0006_moves_the_link_of_unsent_emails_into_link_id(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        _upgrade_to(engine, "0005")
        now = datetime.now(UTC)
        with Session(engine) as session:
            identity = Identity(name="Acme", as2_id="ACME", organisation="Acme Corp")
            session.add(identity)
            session.flush()
            partners = [
                Partner(name=name, as2_id=name.upper(), identity_id=identity.id,
                        environment="production")
                for name in ("a", "b")
            ]  # fmt: skip
            session.add_all(partners)
            session.flush()
            session.add_all(
                ShareLink(id=p.name * 22, partner_id=p.id, expires_at=now + timedelta(days=9))
                for p in partners
            )
            session.commit()
        real_id, other_id = "a" * 22, "b" * 22
        lead = "Open this link (no account needed):\n"
        gone = "g" * 22
        old_bodies = {
            # The link email to partner a; the partner's name carried another link's marker.
            "link": (f"asks a [[link:{other_id}]] to\n\n{lead}[[link:{real_id}]]\n\nUntil", None),
            # A rejection reason someone typed: text, whatever it looks like.
            "typed": (f"not accepted:\n\n{lead}[[link:{other_id}]]\n", "submission-rejected:1"),
            "gone": (f"{lead}[[link:{gone}]]\n", None),
            "sent": (f"{lead}[[link:{real_id}]]\n", None),
        }
        old = table(  # outbox_messages as 0005 left it
            "outbox_messages",
            *(column(name) for name in ("kind", "subject", "body", "dedupe_key", "attempts")),
            column("recipients", JSON),
            column("created_at", UTCDateTime),
            column("sent_at", UTCDateTime),
        )
        with engine.begin() as connection:
            for subject, (body, key) in old_bodies.items():
                connection.execute(
                    insert(old).values(
                        kind="email", recipients=["edi@a.example"], subject=subject, body=body,
                        dedupe_key=key, created_at=now, attempts=0,
                        sent_at=now if subject == "sent" else None,
                    )
                )  # fmt: skip

        _upgrade_to(engine, "0006")
        upgrade(engine)  # later revisions leave these rows be; the models need their columns

        with Session(engine) as session:
            rows = session.execute(select(OutboxMessage.subject, OutboxMessage)).all()
            new = {subject: message for subject, message in rows}
            assert new["link"].link_id == real_id
            assert new["link"].body == (
                f"asks a [[link:{other_id}]] to\n\n{lead}{outbox.LINK_MARK}\n\nUntil"
            )
            assert (new["typed"].link_id, new["typed"].body) == (None, old_bodies["typed"][0])
            assert (new["gone"].link_id, new["gone"].body) == (None, f"{lead}{outbox.LINK_MARK}\n")
            assert (new["sent"].link_id, new["sent"].body) == (None, old_bodies["sent"][0])
            sent: dict[str, str] = {}
            jobs.deliver_outbox(
                session,
                lambda _to, subject, body, _html: sent.__setitem__(subject, body),
                lambda link_id: f"https://portal.test/s/{link_id}.signed",
                now=datetime.now(UTC),
            )
        assert sent == {
            "link": f"asks a [[link:{other_id}]] to\n\n{lead}https://portal.test/s/{real_id}"
            ".signed\n\nUntil",
            "typed": old_bodies["typed"][0],
            "gone": f"{lead}{outbox.LINK_GONE}\n",
        }
    finally:
        engine.dispose()


def test_0008_drops_cancelled_submissions_and_keeps_any_row_that_had_it(fresh_databases) -> None:
    # No code ever set "cancelled"; a row written by hand becomes rejected, with a reason.
    engine = make_engine(fresh_databases.new_url())
    try:
        _upgrade_to(engine, "0007")
        now = datetime.now(UTC)
        with Session(engine) as session:
            identity = Identity(name="Acme", as2_id="ACME", organisation="Acme Corp")
            session.add(identity)
            session.flush()
            partner = Partner(name="a", as2_id="A", identity_id=identity.id,
                              environment="production")  # fmt: skip
            session.add(partner)
            session.commit()
            partner_id = partner.id
        old = table(  # submissions as 0007 left them
            "submissions",
            *(column(name) for name in ("partner_id", "usage", "der", "sha256", "status")),
            column("rejection_reason"),
            column("report", JSON),
            column("created_at", UTCDateTime),
        )
        rows = {"plain": None, "with-reason": "withdrawn by phone", "kept": None}
        with engine.begin() as connection:
            for sha, reason in rows.items():
                connection.execute(
                    insert(old).values(
                        partner_id=partner_id, usage="both", der=b"x", sha256=sha, report={},
                        status="received" if sha == "kept" else "cancelled",
                        rejection_reason=reason, created_at=now,
                    )
                )  # fmt: skip

        _upgrade_to(engine, "0008")

        with engine.connect() as connection:
            after = dict(
                ((sha, (status, reason)) for sha, status, reason in connection.execute(
                    select(old.c.sha256, old.c.status, old.c.rejection_reason)
                ))
            )  # fmt: skip
        assert after == {
            "plain": ("rejected", "Cancelled."),
            "with-reason": ("rejected", "withdrawn by phone"),
            "kept": ("received", None),
        }
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                insert(old).values(
                    partner_id=partner_id, usage="both", der=b"x", sha256="new", report={},
                    status="cancelled", rejection_reason="x", created_at=now,
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def test_0010_adds_submission_chains_empty_for_existing_rows_and_goes_back(
    fresh_databases,
) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        _upgrade_to(engine, "0009")
        now = datetime.now(UTC)
        with Session(engine) as session:
            identity = Identity(name="Acme", as2_id="ACME", organisation="Acme Corp")
            session.add(identity)
            session.flush()
            partner = Partner(name="a", as2_id="A", identity_id=identity.id,
                              environment="production")  # fmt: skip
            session.add(partner)
            session.commit()
            partner_id = partner.id
        old = table(  # submissions as 0009 left them
            "submissions",
            *(column(name) for name in ("partner_id", "usage", "der", "sha256", "status")),
            column("report", JSON),
            column("created_at", UTCDateTime),
        )
        with engine.begin() as connection:
            connection.execute(
                insert(old).values(
                    partner_id=partner_id, usage="both", der=b"x", sha256="old", report={},
                    status="received", created_at=now,
                )
            )  # fmt: skip

        _upgrade_to(engine, "0010")

        new = table("submissions", column("sha256"), column("chain_pem"))
        chain = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        with engine.begin() as connection:
            assert connection.execute(select(new.c.sha256, new.c.chain_pem)).all() == [("old", "")]
            connection.execute(
                insert(old).values(
                    partner_id=partner_id, usage="both", der=b"y", sha256="new", report={},
                    status="received", created_at=now,
                )
            )  # fmt: skip
            connection.execute(new.update().where(new.c.sha256 == "new").values(chain_pem=chain))

        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0009")
        columns = {c["name"] for c in sa_inspect(engine).get_columns("submissions")}
        assert "chain_pem" not in columns
        with engine.connect() as connection:
            assert sorted(connection.execute(select(old.c.sha256)).scalars()) == ["new", "old"]
    finally:
        engine.dispose()


def test_0012_adds_campaigns_with_their_constraints_and_goes_back(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        _upgrade_to(engine, "0011")
        assert "campaigns" not in sa_inspect(engine).get_table_names()
        _upgrade_to(engine, "0012")
        now = datetime.now(UTC)
        campaigns = table(
            "campaigns",
            *(column(name) for name in ("id", "identity_id", "certificate_id", "request_upload")),
            column("activate_at", UTCDateTime),
            column("created_at", UTCDateTime),
        )
        members = table(
            "campaign_partners",
            *(column(name) for name in ("campaign_id", "partner_id", "unreachable")),
            column("added_at", UTCDateTime),
        )
        with Session(engine) as session:
            identity = Identity(name="Acme", as2_id="ACME", organisation="Acme Corp")
            session.add(identity)
            session.flush()
            partner = Partner(name="a", as2_id="A", identity_id=identity.id,
                              environment="production")  # fmt: skip
            session.add(partner)
            session.commit()
            identity_id, partner_id = identity.id, partner.id
        certificates = table(
            "certificates",
            *(column(name) for name in ("id", "identity_id", "usage", "der", "sha256", "sha1")),
            *(column(name) for name in ("subject", "issuer", "serial", "key_type", "source")),
            column("not_before", UTCDateTime),
            column("not_after", UTCDateTime),
            column("created_at", UTCDateTime),
        )
        with engine.begin() as connection:
            connection.execute(
                insert(certificates).values(
                    id=7, identity_id=identity_id, usage="both", der=b"x", sha256="ab", sha1="cd",
                    subject="s", issuer="i", serial="1", key_type="rsa", source="generated",
                    not_before=now, not_after=now + timedelta(days=1), created_at=now,
                )
            )  # fmt: skip
            row = {"identity_id": identity_id, "certificate_id": 7, "request_upload": False,
                   "activate_at": now, "created_at": now}  # fmt: skip
            connection.execute(insert(campaigns).values(id=1, **row))
            connection.execute(
                insert(members).values(
                    campaign_id=1, partner_id=partner_id, unreachable=True, added_at=now
                )
            )
        for statement in (
            insert(campaigns).values(id=2, **row),  # one campaign per certificate
            insert(members).values(campaign_id=1, partner_id=partner_id, unreachable=False,
                                   added_at=now),  # one row per partner
        ):  # fmt: skip
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(statement)

        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0011")
        names = sa_inspect(engine).get_table_names()
        assert "campaigns" not in names
        assert "campaign_partners" not in names
    finally:
        engine.dispose()


def test_0013_gives_waiting_emails_no_wait_and_goes_back(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        _upgrade_to(engine, "0012")
        now = datetime.now(UTC)
        old = table(  # outbox_messages as 0012 left it
            "outbox_messages",
            *(column(name) for name in ("id", "kind", "subject", "body", "attempts")),
            column("last_error"),
            column("recipients", JSON),
            column("created_at", UTCDateTime),
        )
        with engine.begin() as connection:
            connection.execute(
                insert(old).values(
                    id=1, kind="email", recipients=["edi@a.example"], subject="s", body="b",
                    attempts=2, last_error="TimeoutError: timed out", created_at=now,
                )
            )  # fmt: skip

        upgrade(engine)  # 0013 and on: the model needs the later revisions' columns too

        with Session(engine) as session:
            message = session.get(OutboxMessage, 1)
            assert message is not None
            assert message.attachments is None  # 0017: none
            assert message.next_attempt_at is None  # tried at the next run, as before
            assert (message.attempts, message.last_error) == (2, "TimeoutError: timed out")
            assert outbox.unsent_ids(session, limit=10, now=now) == [1]
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0012")
        columns = {c["name"] for c in sa_inspect(engine).get_columns("outbox_messages")}
        assert "next_attempt_at" not in columns
        with engine.begin() as connection:
            assert connection.execute(select(old.c.subject)).scalars().all() == ["s"]
    finally:
        engine.dispose()


def test_0014_makes_old_campaigns_rotations_and_only_they_name_a_certificate(
    fresh_databases,
) -> None:
    engine = make_engine(fresh_databases.new_url())
    now = datetime.now(UTC)
    try:
        _upgrade_to(engine, "0013")
        with engine.begin() as connection:
            connection.execute(
                insert(table("identities", *(column(n) for n in (
                    "id", "name", "as2_id", "environment", "organisation")),
                    column("created_at", UTCDateTime), column("updated_at", UTCDateTime)))
                .values(id=1, name="Acme", as2_id="ACME", environment="production",
                        organisation="Acme Corp", created_at=now, updated_at=now)
            )  # fmt: skip
            connection.execute(
                insert(table("certificates", *(column(n) for n in (
                    "id", "identity_id", "usage", "der", "chain_pem", "sha256", "sha1", "subject",
                    "issuer", "serial", "key_type", "source")),
                    column("not_before", UTCDateTime), column("not_after", UTCDateTime),
                    column("created_at", UTCDateTime)))
                .values(id=7, identity_id=1, usage="both", der=b"x", chain_pem="", sha256="ab",
                        sha1="cd", subject="s", issuer="i", serial="1", key_type="rsa",
                        source="generated", not_before=now, not_after=now + timedelta(days=1),
                        created_at=now)
            )  # fmt: skip
        old = table(
            "campaigns",
            *(column(n) for n in ("id", "identity_id", "certificate_id", "request_upload")),
            column("activate_at", UTCDateTime),
            column("created_at", UTCDateTime),
        )
        row = {"identity_id": 1, "activate_at": now, "created_at": now}
        with engine.begin() as connection:
            connection.execute(
                insert(old).values(id=1, certificate_id=7, request_upload=False, **row)
            )

        _upgrade_to(engine, "0014")

        campaigns = table("campaigns", *(column(c.name) for c in old.columns), column("kind"))
        with engine.begin() as connection:
            assert connection.execute(select(campaigns.c.kind)).scalars().all() == ["rotation"]
            connection.execute(
                insert(campaigns).values(id=2, kind="partner_certificates", certificate_id=None,
                                         request_upload=True, **row)
            )  # fmt: skip
        for bad in (
            {"kind": "partner_certificates", "certificate_id": 7, "request_upload": True},
            {"kind": "rotation", "certificate_id": None, "request_upload": False},
            {"kind": "partner_certificates", "certificate_id": None, "request_upload": False},
            {"kind": "survey", "certificate_id": None, "request_upload": True},
        ):
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(insert(campaigns).values(id=3, **bad, **row))

        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0013")
        columns = {c["name"] for c in sa_inspect(engine).get_columns("campaigns")}
        assert "kind" not in columns
        with engine.begin() as connection:
            # The request had no certificate, which the old schema cannot hold: it is gone.
            assert connection.execute(select(old.c.id)).scalars().all() == [1]
    finally:
        engine.dispose()
