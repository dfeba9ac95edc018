"""The in-force rule at its boundaries (active, previous within the overlap, scheduled),
through the config export document and `portal config-export`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from sqlalchemy.orm import Session

from portal.domain.aliases import certificate_alias
from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import User
from portal.services import config_export
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.schedulehelpers import (
    OVERLAP,
    fingerprint,
    iso_z,
    parse_z,
    schedule_ours,
    signing_of,
)

CERT_KEYS = {
    "fingerprint_sha256",
    "fingerprint_sha1",
    "serial",
    "serial_decimal",
    "usage",
    "accept_from",
    "accept_until",
    "alias",
    "chain",
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "activate_at",
    "pem",
}


@pytest.fixture
def rotation(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """An identity whose old signing certificate is active and whose new one starts at T."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity, usage="signing")
    new = factories.identity_certificate(session, keyring(), identity, usage="signing")
    now = utcnow()
    schedule_ours(session, old, now, proposer=proposer, approver=second, now=now)
    at = (now + timedelta(days=2)).replace(microsecond=0)
    schedule_ours(session, new, at, proposer=proposer, approver=second, now=now)
    session.flush()
    return {"identity": identity, "old": old, "new": new, "at": at}


def test_config_export_follows_the_in_force_rule(session, rotation) -> None:
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    old_fp, new_fp = colon_fingerprint(old.sha256), colon_fingerprint(new.sha256)

    def state(moment: datetime) -> dict[str, Any]:
        document = config_export.config_document(session, at=moment, overlap=OVERLAP)
        return signing_of(document, identity)

    before = state(at - timedelta(seconds=1))
    assert fingerprint(before["active"]) == old_fp
    assert before["previous"] is None
    assert [c["fingerprint_sha256"] for c in before["scheduled"]] == [new_fp]

    after = state(at + timedelta(seconds=1))
    assert fingerprint(after["active"]) == new_fp
    assert fingerprint(after["previous"]) == old_fp
    assert after["scheduled"] == []

    week_later = state(at + OVERLAP)
    assert fingerprint(week_later["active"]) == new_fp
    assert week_later["previous"] is None
    assert week_later["scheduled"] == []


def test_config_export_document_has_the_designed_shape(session, rotation) -> None:
    identity, new, at = rotation["identity"], rotation["new"], rotation["at"]
    partner = factories.partner(session, identity)
    moment = at + timedelta(seconds=1)
    document = config_export.config_document(session, at=moment, overlap=OVERLAP)

    assert set(document) == {"generated_at", "overlap_seconds", "identities", "partners"}
    assert document["overlap_seconds"] == OVERLAP.total_seconds()
    assert document["generated_at"] == iso_z(moment)
    (entry,) = [i for i in document["identities"] if i["as2_id"] == identity.as2_id]
    assert set(entry) == {"as2_id", "name", "environment", "certificates"}
    assert (entry["name"], entry["environment"]) == (identity.name, "production")
    assert set(entry["certificates"]) == {"signing", "encryption"}
    for usage_state in entry["certificates"].values():
        assert set(usage_state) == {
            "send",
            "accept",
            "active",
            "previous",
            "scheduled",
            "next_change_at",
        }
    # A signing-only certificate does not serve encryption.
    assert entry["certificates"]["encryption"] == {
        "send": None,
        "accept": [],
        "active": None,
        "previous": None,
        "scheduled": [],
        "next_change_at": None,
    }
    (partner_entry,) = [p for p in document["partners"] if p["as2_id"] == partner.as2_id]
    assert set(partner_entry) == {"as2_id", "name", "identity", "environment", "certificates"}
    assert partner_entry["identity"] == identity.as2_id

    active = entry["certificates"]["signing"]["active"]
    assert set(active) == CERT_KEYS
    assert set(entry["certificates"]["signing"]["previous"]) == CERT_KEYS
    assert active["activate_at"] == iso_z(at)
    assert parse_z(active["not_before"]) == new.not_before
    assert parse_z(active["not_after"]) == new.not_after
    assert (active["serial"], active["subject"], active["issuer"]) == (
        new.serial,
        new.subject,
        new.issuer,
    )
    pem = x509.load_pem_x509_certificate(active["pem"].encode())
    assert certfactory.der(pem) == new.der
    assert active["fingerprint_sha1"] == colon_fingerprint(new.sha1)
    assert int(active["serial_decimal"]) == pem.serial_number == int(active["serial"], 16)
    assert active["alias"] == certificate_alias(identity.as2_id, new.sha256)
    assert active["chain"] == []
    assert active["accept_until"] is None
    assert entry["certificates"]["signing"]["previous"]["accept_until"] == iso_z(at + OVERLAP)
    assert entry["certificates"]["signing"]["next_change_at"] == iso_z(at + OVERLAP)


def test_config_export_command_prints_the_same_document(session, runner, rotation) -> None:
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    old_fp, new_fp = colon_fingerprint(old.sha256), colon_fingerprint(new.sha256)
    expected = {
        at - timedelta(seconds=1): (old_fp, None, [new_fp]),
        at + timedelta(seconds=1): (new_fp, old_fp, []),
        at + OVERLAP: (new_fp, None, []),
    }
    for moment, (active, previous, scheduled) in expected.items():
        result = runner.invoke(args=["config-export", "--at", iso_z(moment), "--json"])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document == config_export.config_document(session, at=moment, overlap=OVERLAP)
        assert document["generated_at"] == iso_z(moment)
        signing = signing_of(document, identity)
        assert fingerprint(signing["active"]) == active
        assert fingerprint(signing["previous"]) == previous
        assert [c["fingerprint_sha256"] for c in signing["scheduled"]] == scheduled

    # An offset is converted to UTC.
    local = (at + timedelta(seconds=1)).astimezone(ZoneInfo("Asia/Kolkata"))
    result = runner.invoke(args=["config-export", "--at", local.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["generated_at"] == iso_z(at + timedelta(seconds=1))


@pytest.mark.parametrize("at_text", ["2030-01-01T00:00:00", "tomorrow", "2030-13-01T00:00Z"])
def test_config_export_refuses_a_time_without_zone_as_misuse(runner, session, at_text) -> None:
    result = runner.invoke(args=["config-export", "--at", at_text, "--json"])
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output
