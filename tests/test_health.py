"""GET /healthz."""

from __future__ import annotations

from pathlib import Path

from portal import create_app
from tests.conftest import test_settings


def test_healthz_answers_200_when_the_database_answers(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_does_not(tmp_path: Path, database_url) -> None:
    unreachable = f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}"
    app = create_app(test_settings(tmp_path, database_url, DATABASE_URL=unreachable))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
