"""Link tokens never reach a log: app logger, werkzeug's request log, gunicorn's access log."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

from portal.extensions import link_signer
from portal.logs import GunicornLogger, RedactTokensFilter
from portal.services import links
from portal.timeutil import utcnow
from tests import factories


def test_werkzeug_style_request_lines_are_redacted(app, session, caplog) -> None:
    partner = factories.partner(session)
    _link, token = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=1), max_uploads=1, now=utcnow(),
    )  # fmt: skip
    caplog.set_level(logging.INFO)
    logging.getLogger("werkzeug").info('127.0.0.1 - - "%s" %s -', f"GET /s/{token} HTTP/1.1", 200)
    app.logger.error("Exception on /s/%s [GET]", token)
    logging.getLogger("werkzeug").info(f"direct /s/{token}/certificate")
    assert token not in caplog.text
    assert caplog.text.count("/s/[redacted]") == 3


def test_a_request_that_fails_logs_no_token(app, session, client, caplog, monkeypatch) -> None:
    partner = factories.partner(session)
    _link, token = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=1), max_uploads=1, now=utcnow(),
    )  # fmt: skip

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("portal.web.partner.views._render_page", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.set_level(logging.ERROR)
    response = client.get(f"/s/{token}")
    assert response.status_code == 500
    assert "Exception on /s/[redacted]" in caplog.text
    assert token not in caplog.text


def test_gunicorn_access_atoms_are_redacted() -> None:
    from gunicorn.config import Config

    logger = GunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/s/secret-token.sig?usage=both",
        "PATH_INFO": "/s/secret-token.sig",
        "QUERY_STRING": "usage=both",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": "https://portal.example/s/secret-token.sig",
    }
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, timedelta(seconds=1))
    assert "secret-token" not in repr(atoms)
    assert atoms["r"] == "GET /s/[redacted]?usage=both HTTP/1.1"


def test_gunicorn_access_atoms_never_carry_the_authorization_header() -> None:
    from gunicorn.config import Config

    logger = GunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/whoami",
        "PATH_INFO": "/api/v1/whoami",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    request = SimpleNamespace(
        headers=[("AUTHORIZATION", "Bearer cep_secret-api-token"), ("COOKIE", "session=abc")]
    )
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(response, request, environ, timedelta(seconds=1))
    assert "cep_secret-api-token" not in repr(atoms)
    assert "session=abc" not in repr(atoms)
    assert atoms["{authorization}i"] == "[redacted]"


def test_filter_keeps_records_and_other_text() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "path %s ok", ("/partners/1",), None)
    assert RedactTokensFilter().filter(record)
    assert record.getMessage() == "path /partners/1 ok"
