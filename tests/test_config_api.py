"""GET /api/v1/config: scopes, the send/accept/next_change_at boundaries, filters, ETag/304."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import Certificate, User
from portal.services import api_tokens, approvals, config_export
from portal.timeutil import utcnow
from tests import factories
from tests.schedulehelpers import OVERLAP, actor, iso_z, receive, schedule_ours, share

SECOND = timedelta(seconds=1)


def bearer(session: Session, scopes: tuple[str, ...] = ("config:read",)) -> dict[str, str]:
    made = api_tokens.create(
        session, factories.ACTOR, f"engine-{len(scopes)}", scopes, now=utcnow()
    )
    return {"Authorization": f"Bearer {made.secret}"}


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
    other = factories.partner(session, factories.identity(session, as2_id="OTHERAS2"))
    link, _ = share(session, partner)
    approvals.approve_submission(
        session, actor(second), receive(session, link), activate_at=at, now=now
    )
    return {
        "identity": identity,
        "old": old,
        "new": new,
        "at": at,
        "now": now,
        "partner": partner,
        "other": other,
    }


def get(client: FlaskClient, headers: dict[str, str], query: str = "", **extra: str):
    return client.get(f"/api/v1/config{query}", headers={**headers, **extra})


def usage_of(document: dict[str, Any], kind: str, as2_id: str, usage: str) -> dict[str, Any]:
    (entry,) = [o for o in document[kind] if o["as2_id"] == as2_id]
    return entry["certificates"][usage]


def prints(certs: list[dict[str, Any]]) -> list[str]:
    return [c["fingerprint_sha256"] for c in certs]


# --- authentication and scopes -------------------------------------------------------


def test_no_unknown_or_revoked_token_is_401_with_a_json_body(client, session) -> None:
    for headers in ({}, {"Authorization": "Bearer cep_nope"}, {"Authorization": "Basic x"}):
        response = get(client, headers)
        assert response.status_code == 401
        assert response.is_json
        assert response.json["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    made = api_tokens.create(session, factories.ACTOR, "gone", ("config:read",), now=utcnow())
    api_tokens.revoke(session, factories.ACTOR, "gone", now=utcnow())
    assert get(client, {"Authorization": f"Bearer {made.secret}"}).status_code == 401


def test_a_token_without_config_read_is_403_with_a_json_body(client, session) -> None:
    response = get(client, bearer(session, ("keys:export",)))
    assert response.status_code == 403
    assert "config:read" in response.json["error"]


# --- the rule at its boundaries, through the API ---------------------------------------


def test_send_accept_and_next_change_at_each_boundary(client, session, clock, world) -> None:
    headers = bearer(session)
    at = world["at"]
    old, new = (colon_fingerprint(world[k].sha256) for k in ("old", "new"))
    expected = {
        at - SECOND: (old, [old, new], at),
        at: (new, [new, old], at + OVERLAP),
        at + OVERLAP - SECOND: (new, [new, old], at + OVERLAP),
        at + OVERLAP: (new, [new], None),
    }
    for moment, (send, accept, next_change) in expected.items():
        clock.set(moment)
        response = get(client, headers)
        assert response.status_code == 200, response.json
        signing = usage_of(response.json, "identities", "OURAS2", "signing")
        assert signing["send"]["fingerprint_sha256"] == send
        assert signing["send"] == signing["active"]
        assert prints(signing["accept"]) == accept
        assert signing["next_change_at"] == (iso_z(next_change) if next_change else None)


def test_the_partner_side_follows_the_same_rule(client, session, clock, world) -> None:
    headers = bearer(session)
    clock.set(world["at"] - SECOND)
    before = usage_of(get(client, headers).json, "partners", "PARTNERAS2", "encryption")
    assert before["send"] is None
    (scheduled,) = before["accept"]
    assert before["scheduled"] == [scheduled]
    assert scheduled["activate_at"] == iso_z(world["at"])
    assert scheduled["accept_from"] == iso_z(world["now"])
    assert before["next_change_at"] == iso_z(world["at"])
    clock.set(world["at"])
    after = usage_of(get(client, headers).json, "partners", "PARTNERAS2", "encryption")
    assert after["send"]["fingerprint_sha256"] == scheduled["fingerprint_sha256"]
    assert after["next_change_at"] is None


def test_at_answers_for_another_moment_and_a_bad_one_is_400(client, session, clock, world) -> None:
    headers = bearer(session)
    clock.set(world["now"])
    later = get(client, headers, f"?at={iso_z(world['at'] + SECOND)}")
    assert later.json["generated_at"] == iso_z(world["at"] + SECOND)
    signing = usage_of(later.json, "identities", "OURAS2", "signing")
    assert signing["send"]["fingerprint_sha256"] == colon_fingerprint(world["new"].sha256)
    for bad in ("tomorrow", "2030-01-01T00:00:00", "2030-13-01T00:00Z"):
        response = get(client, headers, f"?at={bad}")
        assert response.status_code == 400
        assert response.is_json
        assert "time" in response.json["error"]


# --- filters ---------------------------------------------------------------------------


def test_identity_and_partner_filters(client, session, world) -> None:
    headers = bearer(session)
    mine = get(client, headers, "?identity=OURAS2").json
    assert [i["as2_id"] for i in mine["identities"]] == ["OURAS2"]
    assert [p["as2_id"] for p in mine["partners"]] == ["PARTNERAS2"]
    theirs = get(client, headers, f"?partner={world['other'].as2_id}").json
    assert [i["as2_id"] for i in theirs["identities"]] == ["OTHERAS2"]
    assert [p["as2_id"] for p in theirs["partners"]] == [world["other"].as2_id]
    everything = get(client, headers).json
    assert len(everything["identities"]) == 2
    assert len(everything["partners"]) == 2


@pytest.mark.parametrize("query", ["?identity=NOSUCH", "?partner=NOSUCH"])
def test_unknown_as2_ids_are_404(client, session, world, query) -> None:
    response = get(client, bearer(session), query)
    assert response.status_code == 404
    assert "NOSUCH" in response.json["error"]


@pytest.mark.parametrize("query", ["?identity=A%00B", "?partner=%00"])
def test_an_as2_id_with_a_nul_is_unknown_on_every_database(client, session, world, query) -> None:
    # PostgreSQL refuses a NUL in a query: this was a 500 there (and a 404 on SQLite).
    response = get(client, bearer(session), query)
    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-00:01"])
def test_a_time_outside_the_calendar_in_utc_is_400(client, session, world, at) -> None:
    # Valid ISO 8601, but before the year 1 or after 9999 once in UTC: this was a 500.
    response = get(client, bearer(session), f"?at={at}")
    assert response.status_code == 400
    assert "out of range" in response.json["error"]


def test_config_export_refuses_a_time_outside_the_calendar_as_a_usage_error(runner) -> None:
    result = runner.invoke(args=["config-export", "--at", "0001-01-01T00:00:00+01:00", "--json"])
    assert result.exit_code == 2
    assert "out of range" in result.stderr


def test_an_unknown_environment_is_400(client, session, world) -> None:
    response = get(client, bearer(session), "?environment=staging")
    assert response.status_code == 400


# --- ETag ------------------------------------------------------------------------------


def test_etag_gives_304_until_the_answer_changes(client, session, clock, world) -> None:
    headers = bearer(session)
    clock.set(world["at"] - timedelta(minutes=5))
    first = get(client, headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert first.headers["Cache-Control"] == "no-store"

    clock.advance(timedelta(minutes=4))  # time passes, but no boundary: same answer
    unchanged = get(client, headers, **{"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    assert unchanged.headers["ETag"] == etag

    clock.set(world["at"])  # the boundary: the answer changes, so does the ETag
    crossed = get(client, headers, **{"If-None-Match": etag})
    assert crossed.status_code == 200
    assert crossed.headers["ETag"] != etag
    assert get(client, headers, **{"If-None-Match": crossed.headers["ETag"]}).status_code == 304


def test_etag_changes_when_the_data_does(client, session, clock, world) -> None:
    headers = bearer(session)
    clock.set(world["now"])
    etag = get(client, headers).headers["ETag"]
    world["partner"].name = "Renamed"
    assert get(client, headers, **{"If-None-Match": etag}).status_code == 200


def test_the_etag_is_the_same_for_the_same_answer_at_different_moments(session, world) -> None:
    def version(moment) -> str:
        return config_export.build(session, at=moment, overlap=OVERLAP).version

    assert version(world["now"]) == version(world["at"] - SECOND)
    assert version(world["at"] - SECOND) != version(world["at"])


# --- one document for API and command line ------------------------------------------------


def test_config_export_prints_what_the_api_serves(client, runner, session, clock, world) -> None:
    clock.set(world["at"])
    served = get(client, bearer(session), "?partner=PARTNERAS2").json
    result = runner.invoke(
        args=["config-export", "--partner", "PARTNERAS2", "--json", "--at", iso_z(world["at"])]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == served


def test_config_export_refuses_an_unknown_identity_on_one_line(runner, session, world) -> None:
    result = runner.invoke(args=["config-export", "--identity", "NOSUCH", "--json"])
    assert result.exit_code == 1
    assert "NOSUCH" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_withdrawn_certificate_leaves_the_accept_set(session, world) -> None:
    new: Certificate = world["new"]
    new.withdrawn_at = world["now"]
    session.flush()
    document = config_export.config_document(session, at=world["at"], overlap=OVERLAP)
    signing = usage_of(document, "identities", "OURAS2", "signing")
    assert prints(signing["accept"]) == [colon_fingerprint(world["old"].sha256)]


def test_equal_activation_times_give_one_answer_filtered_or_not(client, session, world) -> None:
    """Two of our certificates approved for the same moment: every view picks the same one."""
    identity, at = world["identity"], world["at"]
    twin = factories.identity_certificate(session, keyring(), identity, usage="signing")
    twin.activate_at, twin.approved_at = at, world["now"] + SECOND  # approved after "new"
    session.flush()
    headers = bearer(session)
    for query in ("", "?identity=OURAS2"):
        document = get(client, headers, f"{query}{'&' if query else '?'}at={iso_z(at)}").json
        signing = usage_of(document, "identities", "OURAS2", "signing")
        assert signing["send"]["fingerprint_sha256"] == colon_fingerprint(twin.sha256)
        assert signing["previous"]["fingerprint_sha256"] == colon_fingerprint(world["new"].sha256)
