"""GET /api/v1/config from the per-process cache: the same answers as without it, a new ETag
as soon as data changes or a boundary passes, and a cached 304 in two statements.

Time is moved with the `clock` fixture; statements are counted with tests/querycount.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from portal import create_app
from portal.clock import install_clock
from portal.extensions import db, keyring
from portal.models import Certificate, User
from portal.services import api_tokens, approvals, config_cache, config_export
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import test_settings
from tests.querycount import counting, describe
from tests.schedulehelpers import OVERLAP, actor, iso_z, receive, schedule_ours, share

SECOND = timedelta(seconds=1)


@pytest.fixture
def world(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """Our identity switching signing certificates at T; a partner switching at T too."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session, as2_id="OURAS2")
    old = factories.identity_certificate(session, keyring(), identity, usage="signing")
    new = factories.identity_certificate(session, keyring(), identity, usage="signing")
    now = utcnow().replace(microsecond=0)
    at = now + timedelta(days=2)
    schedule_ours(session, old, now, proposer=proposer, approver=second, now=now)
    schedule_ours(session, new, at, proposer=proposer, approver=second, now=now)
    partner = factories.partner(session, identity, as2_id="PARTNERAS2")
    link, _ = share(session, partner)
    approvals.approve_submission(
        session, actor(second), receive(session, link), activate_at=at, now=now
    )
    made = api_tokens.create(session, factories.ACTOR, "engine", ["config:read"], now=now)
    session.commit()
    return {
        "identity": identity,
        "new": new,
        "at": at,
        "now": now,
        "partner": partner,
        "headers": {"Authorization": f"Bearer {made.secret}"},
    }


@pytest.fixture
def plans_made(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every time the rule is applied afresh (a cache miss)."""
    made: list[object] = []
    real = config_export.plan

    def counted(*args: Any, **kwargs: Any) -> config_export.Plan:
        made.append(kwargs["at"])
        return real(*args, **kwargs)

    monkeypatch.setattr(config_export, "plan", counted)
    return made


def etag_of(client, world, **headers: str):
    response = client.get("/api/v1/config", headers={**world["headers"], **headers})
    assert response.status_code in (200, 304), response.data
    return response


def test_the_revision_triggers_exist_at_head(session) -> None:
    assert config_cache._triggers_present(session)


def test_a_repeated_request_is_answered_from_the_cache_in_two_statements(
    client, session, connection, clock, world, plans_made
) -> None:
    clock.set(world["now"])
    first = etag_of(client, world)
    etag = first.headers["ETag"]
    session.expunge_all()  # as in production, each request starts with an empty session

    with counting(connection) as statements:
        assert etag_of(client, world, **{"If-None-Match": etag}).status_code == 304
    assert len(statements) <= 2, describe(statements)
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE")) for s in statements)

    clock.advance(timedelta(minutes=5))  # later, no boundary: still the cached answer
    again = etag_of(client, world)
    assert again.headers["ETag"] == etag
    assert len(plans_made) == 1
    # The body is the one rendered afresh, but for the moment it was generated.
    assert again.json["generated_at"] == iso_z(world["now"] + timedelta(minutes=5))
    fresh = config_export.build(session, at=world["now"] + timedelta(minutes=5), overlap=OVERLAP)
    assert again.json == fresh.body
    assert fresh.version == etag.strip('"')


@pytest.mark.parametrize(
    "change",
    ["rename a partner", "add a partner", "withdraw a certificate", "delete a certificate"],
)
def test_a_data_change_gives_a_new_etag_at_once(client, session, clock, world, change) -> None:
    clock.set(world["now"])
    etag = etag_of(client, world).headers["ETag"]
    assert etag_of(client, world, **{"If-None-Match": etag}).status_code == 304
    if change == "rename a partner":
        world["partner"].name = "Renamed"
    elif change == "add a partner":
        factories.partner(session, world["identity"], as2_id="NEWAS2")
    elif change == "withdraw a certificate":
        world["new"].withdrawn_at = world["now"]
    else:
        session.delete(session.get(Certificate, world["new"].id))
    session.commit()

    changed = etag_of(client, world, **{"If-None-Match": etag})

    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json == config_export.build(session, at=world["now"], overlap=OVERLAP).body


def test_an_activation_and_an_overlap_end_give_a_new_etag_at_once(
    client, session, clock, world, plans_made
) -> None:
    at = world["at"]
    moments = (at - SECOND, at, at + OVERLAP - SECOND, at + OVERLAP)
    answers = []
    for moment in moments:
        clock.set(moment)
        answers.append(etag_of(client, world))

    # One fresh plan per period between boundaries; the moment inside the overlap was cached.
    assert plans_made == [at - SECOND, at, at + OVERLAP]
    before, activated, overlapping, after = (a.headers["ETag"] for a in answers)
    assert activated != before
    assert overlapping == activated  # inside the overlap nothing changed
    assert after != overlapping
    for moment, answer in zip(moments, answers, strict=True):
        assert answer.json == config_export.build(session, at=moment, overlap=OVERLAP).body


def test_an_earlier_moment_than_the_cached_one_is_planned_afresh(
    client, session, clock, world, plans_made
) -> None:
    clock.set(world["at"])
    after = etag_of(client, world).headers["ETag"]
    clock.set(world["at"] - SECOND)
    before = etag_of(client, world).headers["ETag"]
    assert before != after
    query = f"?at={iso_z(world['at'] - SECOND)}"
    response = client.get(f"/api/v1/config{query}", headers=world["headers"])
    assert response.headers["ETag"] == before


def test_two_processes_each_see_a_change_made_by_another(
    app, client, session, connection, clock, world, tmp_path, database_url
) -> None:
    other = create_app(test_settings(tmp_path / "other", database_url))
    db.bind_to(other, connection, join_transaction_mode="create_savepoint")
    install_clock(other, clock)
    clock.set(world["now"])
    with other.test_client() as second:
        etags = {etag_of(c, world).headers["ETag"] for c in (client, second)}
        assert len(etags) == 1
        (etag,) = etags
        world["partner"].name = "Renamed elsewhere"
        session.commit()
        for c in (client, second):
            assert etag_of(c, world, **{"If-None-Match": etag}).status_code == 200


def test_without_the_triggers_nothing_is_cached(
    client, session, clock, world, plans_made, monkeypatch
) -> None:
    monkeypatch.setattr(config_cache, "_triggers_present", lambda _session: False)
    clock.set(world["now"])
    etag = etag_of(client, world).headers["ETag"]
    assert etag_of(client, world, **{"If-None-Match": etag}).status_code == 304
    assert len(plans_made) == 2


class _FakePlan:
    """A plan whose document is SIZE bytes long; counts how often it is rendered."""

    def __init__(self, version: str, size: int, *, hold: float = 0.0) -> None:
        self.version, self.size, self.renders, self.hold = version, size, 0, hold

    def render(self, session: object) -> Any:
        self.renders += 1
        if self.hold:  # a slow render: the window in which other requests miss too
            threading.Event().wait(self.hold)
        body = b'{"generated_at":"x","v":"' + b"a" * self.size + b'"}'
        return type("Document", (), {"to_json": lambda _self: body})()


def test_rendered_bodies_are_kept_within_a_byte_budget() -> None:
    cache = config_cache.ConfigCache(bodies=8, body_bytes=3_000)
    at = utcnow()
    first, second, huge = _FakePlan("a", 1_000), _FakePlan("b", 1_000), _FakePlan("c", 5_000)

    for plan in (first, second, first, second):
        cache.body(None, plan, at)  # type: ignore[arg-type]
    assert (first.renders, second.renders) == (1, 1)  # both kept: 2 KB within 3 KB

    for _ in range(2):
        cache.body(None, huge, at)  # type: ignore[arg-type]
    assert huge.renders == 2  # bigger than the whole budget: never kept

    third = _FakePlan("d", 1_500)
    cache.body(None, third, at)  # type: ignore[arg-type]
    cache.body(None, first, at)  # type: ignore[arg-type]
    # Keeping the third went over the budget: the least recently used (the first) went.
    assert first.renders == 2
    assert second.renders == 1


def test_requests_that_miss_together_wait_for_one_render() -> None:
    cache = config_cache.ConfigCache()
    plan = _FakePlan("e", 10, hold=0.3)
    started = threading.Barrier(6)

    def ask() -> None:
        started.wait()
        cache.body(None, plan, utcnow())  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert plan.renders == 1
