"""The staff audit page's partner, identity and date filters, and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from portal.services import audit
from portal.services.actor import Actor
from tests import factories


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(audit, "utcnow", lambda: moment)


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_partner_filter_takes_an_as2_id_or_a_name(session, viewer_client) -> None:
    ours = factories.partner(session, name="Initech Logistics", as2_id="INITECH01")
    other = factories.partner(session)
    audit.record(session, Actor("probe"), "probe.ours", object_type="partner",
                 object_id=ours.id, summary="about ours")  # fmt: skip
    audit.record(session, Actor("probe"), "probe.other", object_type="partner",
                 object_id=other.id, summary="about the other")  # fmt: skip
    session.commit()
    for query in ("INITECH01", "initech logistics"):
        page = viewer_client.get("/audit", query_string={"partner": query}).get_data(as_text=True)
        assert "probe.ours" in page
        assert "probe.other" not in page
    page = viewer_client.get("/audit?partner=NOSUCHPARTNER").get_data(as_text=True)
    assert "No event matches" in page


def test_identity_filter_takes_an_as2_id_or_a_name(session, viewer_client) -> None:
    station = factories.identity(session, name="Hub North", as2_id="HUBNORTH")
    audit.record(session, Actor("probe"), "probe.station", object_type="identity",
                 object_id=station.id, summary="about the station")  # fmt: skip
    audit.record(session, Actor("probe"), "probe.partner", object_type="partner",
                 object_id=station.id, summary="same id, other kind")  # fmt: skip
    session.commit()
    for query in ("HUBNORTH", "Hub North"):
        page = viewer_client.get("/audit", query_string={"identity": query}).get_data(as_text=True)
        assert "probe.station" in page
        assert "probe.partner" not in page


def test_date_range_is_days_in_the_viewers_zone(session, make_user, login, monkeypatch) -> None:
    tokyo = login(make_user("viewer", timezone="Asia/Tokyo"))
    # 2026-03-01 23:30 UTC is already 2 March in Tokyo (UTC+9).
    for action, moment in (
        ("probe.feb28", datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),
        ("probe.late", datetime(2026, 3, 1, 23, 30, tzinfo=UTC)),
        ("probe.mar3", datetime(2026, 3, 3, 1, 0, tzinfo=UTC)),
    ):
        _at(monkeypatch, moment)
        audit.record(session, Actor("probe"), action, object_type="partner", object_id=1,
                     summary=action)  # fmt: skip
    session.commit()
    page = tokyo.get("/audit?from=2026-03-02&to=2026-03-02&actor=probe").get_data(as_text=True)
    assert "probe.late" in page
    assert "probe.feb28" not in page
    assert "probe.mar3" not in page  # 10:00 on 3 March in Tokyo
    assert "Asia/Tokyo" in page
    page = tokyo.get("/audit?from=2026-03-03&actor=probe").get_data(as_text=True)
    assert ("probe.mar3" in page, "probe.late" in page) == (True, False)
    page = tokyo.get("/audit?to=2026-03-01&actor=probe").get_data(as_text=True)
    assert ("probe.feb28" in page, "probe.late" in page) == (True, False)


@pytest.mark.parametrize("path", ["/audit?from=yesterday", "/audit.csv?to=2026-13-40"])
def test_a_bad_date_is_a_clear_400(viewer_client, path: str) -> None:
    response = viewer_client.get(path)
    assert response.status_code == 400
    assert "is not a date" in response.get_data(as_text=True)


def test_csv_export_streams_the_filtered_events_newest_first(
    session, viewer_client, monkeypatch
) -> None:
    monkeypatch.setattr(audit, "EXPORT_BATCH", 2)  # several batches for five events
    made = [
        audit.record(
            session,
            Actor("exporter"),
            "probe.csv",
            object_type="partner",
            object_id=n,
            summary=f"event {n}",
            details={"n": n},
        )
        for n in range(5)
    ]
    audit.record(session, Actor("someone else"), "probe.csv", object_type="partner",
                 object_id=9, summary="not exported")  # fmt: skip
    session.commit()
    response = viewer_client.get("/audit.csv?actor=exporter&action=probe.csv")
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert [int(r["id"]) for r in rows] == [e.id for e in reversed(made)]
    assert rows[0]["details"] == '{"n": 4}'
    assert rows[0]["hash"] == made[-1].hash
    assert rows[0]["occurred_at"] == made[-1].occurred_at.isoformat()


def test_csv_cells_never_run_as_spreadsheet_formulas(session, viewer_client) -> None:
    audit.record(session, Actor("=cmd|' /C calc'!A0"), "probe.formula", object_type="partner",
                 object_id=1, summary='=HYPERLINK("http://evil.example")')  # fmt: skip
    session.commit()
    (row,) = _csv(viewer_client.get("/audit.csv?action=probe.formula"))
    assert row["summary"] == '\'=HYPERLINK("http://evil.example")'
    assert row["actor"].startswith("'=")


def test_exporting_the_trail_is_itself_audited(session, viewer_client) -> None:
    _csv(viewer_client.get("/audit.csv?partner=ACME"))
    (event,) = audit.latest_for(session, "audit", "csv", limit=1)
    assert event.action == "audit.exported"
    assert event.details == {"filters": {"partner": "ACME"}}
    assert audit.verify(session).broken is None
