"""`portal submissions list` and `portal submission approve|reject`."""

from __future__ import annotations

import json

from portal.domain.certs import colon_fingerprint
from tests import factories
from tests.schedulehelpers import (
    partner_certificates,
    receive,
    share,
)


def test_submission_commands(session, runner, make_user) -> None:
    approver, operator = make_user("approver"), make_user("operator")
    partner = factories.partner(session)
    link, _ = share(session, partner)
    first, second = receive(session, link), receive(session, link)
    session.commit()  # the command shares this session; a refusal rolls back only its own work

    listed = runner.invoke(args=["submissions", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)["submissions"]
    mine = [row for row in rows if row["partner"] == partner.as2_id]
    assert [row["id"] for row in mine] == [second.id, first.id]  # newest first
    assert {row["status"] for row in mine} == {"received"}
    assert mine[0]["fingerprint_sha256"] == colon_fingerprint(second.sha256)
    assert mine[0]["partner_name"] == partner.name

    approve = ["submission", "approve", str(first.id), "--activate-at", "now"]
    refused = runner.invoke(args=[*approve, "--as", operator.email])
    assert refused.exit_code == 1, refused.output
    assert "operator" in refused.output
    assert first.status == "received"

    done = runner.invoke(args=[*approve, "--as", approver.email])
    assert done.exit_code == 0, done.output
    assert f"Approved submission #{first.id}" in done.stdout
    assert first.status == "approved"
    assert len(partner_certificates(session, partner)) == 1

    unknown = runner.invoke(
        args=["submission", "approve", "987654", "--activate-at", "now", "--as", approver.email]
    )
    assert unknown.exit_code == 1
    assert "No submission 987654" in unknown.output

    misuse = runner.invoke(
        args=["submission", "approve", str(second.id), "--activate-at", "garbage", "--as", "x"]
    )
    assert misuse.exit_code == 2, misuse.output
    assert second.status == "received"

    reject = ["submission", "reject", str(second.id), "--reason", "Wrong AS2 ID in the CN"]
    rejected = runner.invoke(args=[*reject, "--as", approver.email])
    assert rejected.exit_code == 0, rejected.output
    assert second.status == "rejected"
    again = runner.invoke(args=[*reject, "--as", approver.email])
    assert again.exit_code == 1
    assert "is rejected, not received" in again.output

    by_status = {}
    for status in ("received", "approved", "rejected"):
        result = runner.invoke(args=["submissions", "list", "--status", status, "--json"])
        assert result.exit_code == 0, result.output
        by_status[status] = [
            row
            for row in json.loads(result.stdout)["submissions"]
            if row["partner"] == partner.as2_id
        ]
    assert by_status["received"] == []
    assert [row["id"] for row in by_status["approved"]] == [first.id]
    assert [row["id"] for row in by_status["rejected"]] == [second.id]
    assert by_status["rejected"][0]["rejection_reason"] == "Wrong AS2 ID in the CN"
    # No submission is ever cancelled: the state is gone from the choices.
    gone = runner.invoke(args=["submissions", "list", "--status", "cancelled"])
    assert gone.exit_code == 2
    assert "'received', 'approved', 'rejected', 'all'" in gone.output
