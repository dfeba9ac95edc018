"""The audit trail's hash chain: every writer appends to it, and `portal audit verify`
detects an edited, deleted, inserted or reordered event and names it."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portal.database import make_engine
from portal.domain import audit_chain
from portal.migrate import upgrade
from portal.models import AuditEvent
from portal.services import audit
from portal.services.actor import Actor


def _record(session: Session, n: int, **details: Any) -> AuditEvent:
    return audit.record(
        session,
        Actor("tester"),
        f"test.event{n}",
        object_type="partner",
        object_id=n,
        summary=f"Event number {n}",
        details={"n": n, **details},
    )


def _events(session: Session, count: int = 6) -> list[AuditEvent]:
    made = [_record(session, n, nested={"b": 1, "a": [n]}) for n in range(count)]
    session.commit()
    return made


def _verify(runner: Any, *args: str) -> Any:
    return runner.invoke(args=["audit", "verify", *args])


def _rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_each_event_stores_the_previous_events_hash_and_its_own(session) -> None:
    first, second = _record(session, 1), _record(session, 2)
    assert second.prev_hash == first.hash
    assert second.id == first.id + 1
    assert second.hash == audit_chain.content_hash(
        {name: getattr(second, name) for name in audit_chain.FIELDS}
    )


def test_an_untouched_chain_passes_and_says_how_many_it_checked(session, runner) -> None:
    _events(session)
    result = _verify(runner)
    assert result.exit_code == 0, result.output
    assert f"{_rows(session)} events checked" in result.output
    document = json.loads(_verify(runner, "--json").output)
    assert document["intact"] is True
    assert document["checked"] == _rows(session)


def test_the_chain_holds_after_the_stored_values_are_read_back(session, runner) -> None:
    # Hashes are computed before storing: the database must give the same content back.
    _record(session, 1, text="naïve ✓ \u202e", number=1.5, flag=True, nothing=None)
    session.commit()
    session.expire_all()
    assert audit.verify(session).broken is None


def _bad(runner: Any) -> dict[str, Any]:
    result = _verify(runner, "--json")
    assert result.exit_code == 1, result.output
    bad: dict[str, Any] = json.loads(result.output)["first_bad"]
    return bad


def test_an_edited_summary_is_named_as_changed_content(session, runner) -> None:
    events = _events(session)
    session.execute(
        text("UPDATE audit_events SET summary = 'nothing happened' WHERE id = :id"),
        {"id": events[2].id},
    )
    session.commit()
    assert _bad(runner) == {
        "id": events[2].id,
        "occurred_at": events[2].occurred_at.isoformat(),
        "action": "test.event2",
        "reason": "content changed",
    }
    text_result = _verify(runner)
    assert f"First bad event: #{events[2].id}" in text_result.output
    assert "test.event2: content changed" in text_result.output


def test_a_deleted_event_is_named_by_the_event_after_it(session, runner) -> None:
    events = _events(session)
    session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": events[3].id})
    session.commit()
    bad = _bad(runner)
    assert (bad["id"], bad["action"]) == (events[4].id, "test.event4")
    assert bad["reason"] == "previous event missing or changed"


def test_a_forged_event_inserted_with_correct_hashes_is_named(session, runner) -> None:
    events = _events(session)
    # Make room after event 2 (renumbering the later ones), then forge event 3 properly.
    for event in reversed(events[3:]):
        session.execute(
            text("UPDATE audit_events SET id = id + 1 WHERE id = :id"), {"id": event.id}
        )
    forged = {
        "id": events[3].id,
        "occurred_at": events[2].occurred_at,
        "actor_id": None,
        "actor": "tester",
        "action": "key.exported",
        "object_type": "identity",
        "object_id": "1",
        "summary": "Nothing to see",
        "details": {},
        "client_address": None,
        "user_agent": None,
    }
    audit_chain.chain([forged], events[2].hash or "")
    session.execute(
        text(
            "INSERT INTO audit_events (id, occurred_at, actor, action, object_type, object_id,"
            " summary, details, prev_hash, hash) VALUES (:id, :at, :actor, :action, :ot, :oi,"
            " :summary, '{}', :prev, :hash)"
        ),
        {"id": forged["id"], "at": forged["occurred_at"].replace(tzinfo=None), "actor": "tester",
         "action": "key.exported", "ot": "identity", "oi": "1", "summary": "Nothing to see",
         "prev": forged["prev_hash"], "hash": forged["hash"]},
    )  # fmt: skip
    session.commit()
    bad = _bad(runner)
    assert (bad["id"], bad["action"]) == (events[3].id, "key.exported")
    assert bad["reason"].startswith("inserted")


def test_a_naively_forged_event_is_named(session, runner) -> None:
    events = _events(session)
    session.execute(
        text(
            "INSERT INTO audit_events (id, occurred_at, actor, action, object_type, object_id,"
            " summary, details) VALUES (:id, :at, 'x', 'forged', 'user', '1', 'forged', '{}')"
        ),
        {"id": events[-1].id + 1, "at": events[-1].occurred_at.replace(tzinfo=None)},
    )
    session.commit()
    bad = _bad(runner)
    assert (bad["id"], bad["action"]) == (events[-1].id + 1, "forged")


def test_two_events_with_their_content_swapped_are_named(session, runner) -> None:
    events = _events(session)
    columns = "actor, action, object_type, object_id, summary, details, prev_hash, hash"
    first, second = events[1].id, events[2].id
    rows = {
        row.id: row
        for row in session.execute(
            text(f"SELECT id, {columns} FROM audit_events WHERE id IN (:a, :b)"),  # noqa: S608
            {"a": first, "b": second},
        )
    }
    names = columns.split(", ")
    for target, source in ((first, second), (second, first)):
        values = {name: getattr(rows[source], name) for name in names}
        if not isinstance(values["details"], str):
            values["details"] = json.dumps(values["details"])
        assignments = ", ".join(f"{name} = :{name}" for name in names)
        session.execute(
            text(f"UPDATE audit_events SET {assignments} WHERE id = :id"),  # noqa: S608
            {**values, "id": target},
        )
    session.commit()
    bad = _bad(runner)
    assert bad["id"] == first
    assert bad["action"] == "test.event2"  # the content now stored under the first id


def test_a_chain_written_by_two_writers_at_once_never_forks(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    upgrade(engine)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for n in range(25):
                with Session(engine) as session:
                    _record(session, n, worker=worker)
                    if n % 5 == 0:  # bulk appends interleave with single ones
                        audit.chain_rows(
                            session,
                            [
                                {"actor": "bulk", "action": "test.bulk", "object_type": "partner",
                                 "object_id": str(k), "summary": f"bulk {k}", "details": {}}
                                for k in range(3)
                            ],
                        )  # fmt: skip
                    session.commit()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Session(engine) as session:
        walk = audit.verify(session, batch=7)
        assert walk.broken is None
        assert walk.checked == 2 * (25 + 5 * 3)
        hashes = session.scalars(select(AuditEvent.prev_hash)).all()
        assert len(hashes) == len(set(hashes))  # no two events follow the same one
    engine.dispose()


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_verify_reads_in_batches_of_any_size(session, batch: int) -> None:
    _events(session, 5)
    walk = audit.verify(session, batch=batch)
    assert walk.broken is None
    assert walk.checked == _rows(session)


def test_the_migration_chains_the_events_written_before_it(fresh_databases) -> None:
    from alembic import command

    from portal.migrate import alembic_config

    engine = make_engine(fresh_databases.new_url())
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0018")
        for n in range(5):
            connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, actor, action, object_type, object_id,"
                    " summary, details) VALUES (:at, 'old', :action, 'partner', '1', 'before',"
                    " :details)"
                ),
                {"at": f"2026-01-0{n + 1} 10:00:00.12345{n}", "action": f"old.{n}",
                 "details": json.dumps({"n": n, "z": [1, {"b": 2, "a": 1}]})},
            )  # fmt: skip
        connection.execute(text("DELETE FROM audit_events WHERE action = 'old.2'"))  # a gap
    upgrade(engine)
    with Session(engine) as session:
        _record(session, 99)  # new events follow the migrated ones
        session.commit()
        walk = audit.verify(session, batch=2)
        assert walk.broken is None
        assert walk.checked == 5
    engine.dispose()
