"""The campaign rules without an app: what each kind asks, states, risk, reminders, who to ask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.domain import campaigns as rules
from portal.domain.campaigns import Asks, Facts, PartnerState
from portal.domain.reports import CertRow

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OVERLAP = 7 * DAY
ROTATION = rules.asks_of("rotation", False)
ROTATION_WITH_UPLOAD = rules.asks_of("rotation", True)
REQUEST = rules.asks_of("partner_certificates", False)  # always asks the upload


def facts(**changes: object) -> Facts:
    values: dict[str, object] = {
        "opened": 0, "downloaded": 0, "acknowledged_at": None,
        "submission_status": None, "certificate_activate_at": None,
    }  # fmt: skip
    values.update(changes)
    return Facts(**values)  # type: ignore[arg-type]


def test_what_each_kind_asks() -> None:
    assert rules.asks_of("rotation", False) == Asks(install=True, upload=False)
    assert rules.asks_of("rotation", True) == Asks(install=True, upload=True)
    assert rules.asks_of("partner_certificates", False) == Asks(install=False, upload=True)


def test_a_request_for_certificates_counts_no_download_or_acknowledgement_step() -> None:
    assert rules.states_of(REQUEST) == (
        PartnerState.SENT, PartnerState.OPENED, PartnerState.UPLOADED,
        PartnerState.APPROVED, PartnerState.IN_FORCE,
    )  # fmt: skip
    assert PartnerState.ACKNOWLEDGED in rules.states_of(ROTATION)
    assert PartnerState.UPLOADED not in rules.states_of(ROTATION)


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, PartnerState.SENT),
        ({"opened": 2}, PartnerState.OPENED),
        # A download or an acknowledgement is not what a request waits for.
        ({"opened": 1, "downloaded": 1, "acknowledged_at": NOW}, PartnerState.OPENED),
        ({"opened": 1, "submission_status": "rejected"}, PartnerState.OPENED),
        ({"submission_status": "received"}, PartnerState.UPLOADED),
        ({"submission_status": "approved", "certificate_activate_at": NOW + DAY},
         PartnerState.APPROVED),
        ({"submission_status": "approved", "certificate_activate_at": NOW}, PartnerState.IN_FORCE),
    ],
)  # fmt: skip
def test_the_state_of_a_partner_asked_for_its_certificate(changes, state) -> None:
    assert rules.partner_state(facts(**changes), asks=REQUEST, now=NOW) is state


def test_a_rotation_still_reads_downloads_and_acknowledgements() -> None:
    seen = facts(opened=1, downloaded=1, acknowledged_at=NOW)
    assert rules.partner_state(seen, asks=ROTATION, now=NOW) is PartnerState.ACKNOWLEDGED
    uploaded = facts(acknowledged_at=NOW, submission_status="received")
    assert rules.partner_state(uploaded, asks=ROTATION, now=NOW) is PartnerState.ACKNOWLEDGED
    assert rules.partner_state(uploaded, asks=ROTATION_WITH_UPLOAD, now=NOW) is (
        PartnerState.UPLOADED
    )


@pytest.mark.parametrize(
    ("asks", "changes", "risky"),
    [
        (REQUEST, {}, True),
        (REQUEST, {"acknowledged_at": NOW}, True),  # acknowledging is not uploading
        (REQUEST, {"submission_status": "rejected"}, True),
        (REQUEST, {"submission_status": "received"}, False),
        (ROTATION, {}, True),
        (ROTATION, {"acknowledged_at": NOW}, False),
        (ROTATION_WITH_UPLOAD, {"submission_status": "received"}, True),  # still not installed
    ],
)
def test_at_risk_waits_for_what_the_campaign_is_about(asks, changes, risky) -> None:
    t = NOW + 2 * DAY
    window = 3 * DAY
    assert rules.at_risk(
        facts(**changes), asks=asks, activate_at=t, risk_window=window, now=NOW
    ) is (risky)
    # Earlier than the window, nobody is at risk.
    early = NOW - 5 * DAY
    assert not rules.at_risk(facts(**changes), asks=asks, activate_at=t, risk_window=window,
                             now=early)  # fmt: skip


@pytest.mark.parametrize(
    ("asks", "changes", "remind"),
    [
        (REQUEST, {}, True),
        (REQUEST, {"acknowledged_at": NOW}, True),
        (REQUEST, {"submission_status": "rejected"}, True),
        (REQUEST, {"submission_status": "received"}, False),
        (ROTATION, {"acknowledged_at": NOW}, False),
        (ROTATION_WITH_UPLOAD, {"acknowledged_at": NOW}, True),
        (ROTATION_WITH_UPLOAD, {"acknowledged_at": NOW, "submission_status": "approved"}, False),
    ],
)
def test_who_still_needs_a_reminder(asks, changes, remind) -> None:
    assert rules.needs_reminder(facts(**changes), asks=asks) is remind


def row(n: int, *, usage: str = "both", expires_in: timedelta, activate_in: timedelta) -> CertRow:
    return CertRow(
        id=n, owner="partner:1", owner_name="", usage=usage, not_after=NOW + expires_in,
        activate_at=NOW + activate_in, withdrawn_at=None, approved_at=NOW - 400 * DAY,
    )  # fmt: skip


BEFORE = NOW + 60 * DAY


def test_who_to_ask_for_a_new_certificate() -> None:
    soon = row(1, expires_in=20 * DAY, activate_in=-100 * DAY)
    later = row(2, expires_in=200 * DAY, activate_in=-100 * DAY)
    successor = row(3, expires_in=500 * DAY, activate_in=10 * DAY)
    ask = rules.why_ask

    assert ask([soon], before=BEFORE, now=NOW, overlap=OVERLAP) == (
        f"its signing certificate expires on {soon.not_after:%Y-%m-%d}"
    )
    assert ask([later], before=BEFORE, now=NOW, overlap=OVERLAP) is None
    assert ask([soon, successor], before=BEFORE, now=NOW, overlap=OVERLAP) is None
    assert ask([], before=BEFORE, now=NOW, overlap=OVERLAP) == "no certificate in force"
    assert ask([later], before=None, now=NOW, overlap=OVERLAP) == "every partner was asked"


def test_each_usage_counts_on_its_own() -> None:
    signing = row(1, usage="signing", expires_in=200 * DAY, activate_in=-100 * DAY)
    encryption = row(2, usage="encryption", expires_in=30 * DAY, activate_in=-100 * DAY)

    why = rules.why_ask([signing, encryption], before=BEFORE, now=NOW, overlap=OVERLAP)

    assert why == f"its encryption certificate expires on {encryption.not_after:%Y-%m-%d}"
    assert rules.why_ask([signing], before=BEFORE, now=NOW, overlap=OVERLAP) == (
        "no encryption certificate in force"
    )


def test_a_replacement_that_expires_no_later_does_not_count() -> None:
    soon = row(1, expires_in=20 * DAY, activate_in=-100 * DAY)
    shorter = row(2, expires_in=15 * DAY, activate_in=5 * DAY)

    assert rules.why_ask([soon, shorter], before=BEFORE, now=NOW, overlap=OVERLAP) is not None
