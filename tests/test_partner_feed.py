"""GET /s/<token>/certificates.json: our certificates for a partner's automation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import AuditEvent, User
from portal.services import links
from portal.timeutil import utcnow
from tests import factories
from tests.linkhelpers import share
from tests.schedulehelpers import OVERLAP, iso_z, schedule_ours

SECOND = timedelta(seconds=1)


@pytest.fixture
def rotation(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """Our identity switching from OLD to NEW at T; a partner of it with a link."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session, as2_id="OURAS2")
    old = factories.identity_certificate(session, keyring(), identity, usage="both")
    new = factories.identity_certificate(session, keyring(), identity, usage="both")
    now = utcnow().replace(microsecond=0)
    at = now + timedelta(days=2)
    schedule_ours(session, old, now, proposer=proposer, approver=second, now=now)
    schedule_ours(session, new, at, proposer=proposer, approver=second, now=now)
    shared = share(session, factories.partner(session, identity))
    return {"old": old, "new": new, "at": at, "shared": shared}


def feed(client, token: str, **headers: str):
    return client.get(f"/s/{token}/certificates.json", headers=headers)


def test_the_feed_gives_send_accept_and_next_change(client, clock, rotation) -> None:
    token, at = rotation["shared"].token, rotation["at"]
    old, new = (colon_fingerprint(rotation[k].sha256) for k in ("old", "new"))
    clock.set(at - SECOND)
    before = feed(client, token)
    assert before.status_code == 200
    assert before.mimetype == "application/json"
    body = before.json
    assert body["identity"]["as2_id"] == "OURAS2"
    assert body["partner"]["as2_id"] == rotation["shared"].partner.as2_id
    for usage in ("signing", "encryption"):
        state = body["certificates"][usage]
        assert state["send"]["fingerprint_sha256"] == old
        assert [c["fingerprint_sha256"] for c in state["accept"]] == [old, new]
        assert state["next_change_at"] == iso_z(at)
    clock.set(at + OVERLAP)
    after = feed(client, token).json["certificates"]["signing"]
    assert [c["fingerprint_sha256"] for c in after["accept"]] == [new]


def test_public_parts_only(client, rotation) -> None:
    text = feed(client, rotation["shared"].token).get_data(as_text=True)
    assert "PRIVATE KEY" not in text
    assert "BEGIN CERTIFICATE" in text


def test_etag_answers_304_until_a_boundary(client, clock, rotation) -> None:
    token, at = rotation["shared"].token, rotation["at"]
    clock.set(at - timedelta(hours=1))
    etag = feed(client, token).headers["ETag"]
    clock.advance(timedelta(minutes=30))
    assert feed(client, token, **{"If-None-Match": etag}).status_code == 304
    clock.set(at)
    assert feed(client, token, **{"If-None-Match": etag}).status_code == 200


def test_a_get_consumes_nothing_and_writes_nothing(client, session, rotation) -> None:
    shared = rotation["shared"]
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    for _ in range(3):
        assert feed(client, shared.token).status_code == 200
    session.refresh(shared.link)
    assert (shared.link.opened_count, shared.link.download_count) == (0, 0)
    assert shared.link.uploads_used == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_unknown_expired_and_upload_only_links_answer_json(client, session, clock, rotation):
    unknown = feed(client, "not-a-token")
    assert unknown.status_code == 404
    assert unknown.is_json
    assert "not valid" in unknown.json["error"]

    upload_only = share(session, rotation["shared"].partner, can_download=False)
    refused = feed(client, upload_only.token)
    assert refused.status_code == 403
    assert "uploading only" in refused.json["error"]

    links.revoke(session, factories.ACTOR, rotation["shared"].link, utcnow())
    gone = feed(client, rotation["shared"].token)
    assert gone.status_code == 410
    assert gone.is_json


def test_the_partner_page_shows_the_feed_line(client, rotation) -> None:
    page = client.get(f"/s/{rotation['shared'].token}").get_data(as_text=True)
    assert f"/s/{rotation['shared'].token}/certificates.json" in page


def test_the_feed_holds_only_the_partners_identity(client, session, rotation) -> None:
    other_identity = factories.identity(session, as2_id="ELSEAS2")
    other = factories.identity_certificate(session, keyring(), other_identity, usage="both")
    other.activate_at = utcnow() - timedelta(days=1)  # in force for its own identity
    text = feed(client, rotation["shared"].token).get_data(as_text=True)
    assert "ELSEAS2" not in text
    assert colon_fingerprint(other.sha256) not in text


def test_renaming_the_partner_changes_the_etag(client, session, rotation) -> None:
    token, partner = rotation["shared"].token, rotation["shared"].partner
    etag = feed(client, token).headers["ETag"]
    partner.name = "Renamed Partner Ltd"
    session.flush()
    renamed = feed(client, token, **{"If-None-Match": etag})
    assert renamed.status_code == 200
    assert renamed.json["partner"]["name"] == "Renamed Partner Ltd"
