"""A link token never reaches a log, however the request spelled its path (issue 13).

A server accepts /s%2F<token>, /%73/<token>, //s//<token>, a token inside ?next=... and
double-encoded forms; gunicorn logs the raw request line. Each spelling goes through
gunicorn's access-log fields, the app's loggers and, once, a real gunicorn and `portal serve`.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from portal.domain.tokens import LinkSigner, new_link_id, redact_tokens
from portal.logs import GunicornLogger, RedactTokensFilter
from tests.liveserver import free_port, has_module, run_portal, start_server, stop

TOKEN = LinkSigner(["k" * 32]).sign(new_link_id())


def _every_char_encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


SPELLINGS = {
    "plain": f"/s/{TOKEN}",
    "plain_with_suffix": f"/s/{TOKEN}/certificate?usage=both",
    "encoded_slash": f"/s%2F{TOKEN}",
    "encoded_slash_lower": f"/s%2f{TOKEN}/download",
    "encoded_s": f"/%73/{TOKEN}",
    "doubled_slashes": f"//s//{TOKEN}",
    "upper_s": f"/S/{TOKEN}",
    "backslashes": f"/\\s\\{TOKEN}",
    "encoded_dot": f"/s/{TOKEN.replace('.', '%2E')}",
    "every_char_encoded": _every_char_encoded(f"/s/{TOKEN}"),
    "double_encoded": _quote(_quote(f"/s/{TOKEN}")),
    "triple_encoded": _quote(_quote(_quote(f"/s/{TOKEN}"))),
    "next_plain": f"/login?next=/s/{TOKEN}",
    "next_encoded": f"/login?next={_quote(f'/s/{TOKEN}')}",
    "next_double_encoded": f"/login?next={_quote(_quote(f'/s/{TOKEN}'))}",
    "next_absolute": f"/login?next={_quote(f'https://portal.example//s//{TOKEN}')}",
    "token_alone": f"/?t={TOKEN}",
    "token_after_crlf": f"/x%0D%0A/s/{TOKEN}",
}


def _leaks(text: str) -> bool:
    """Whether TEXT holds the token, in any spelling that decodes to it."""
    for _ in range(12):
        if TOKEN in text or TOKEN.replace(".", "%2E") in text:
            return True
        text = urllib.parse.unquote(text)
    return TOKEN in text


def _environ(raw_uri: str) -> dict[str, str]:
    path, _, query = raw_uri.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": urllib.parse.unquote(path),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://portal.example{raw_uri}",
        "HTTP_USER_AGENT": "probe",
    }


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_gunicorn_access_fields_never_carry_a_token_in_any_spelling(spelling: str) -> None:
    from gunicorn.config import Config

    logger = GunicornLogger(Config())
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(
        response, SimpleNamespace(headers=[]), _environ(SPELLINGS[spelling]), timedelta(seconds=1)
    )
    assert not _leaks(repr(atoms))
    assert "[redacted]" in atoms["r"]
    line = logger.cfg.access_log_format % atoms
    assert not _leaks(line)
    assert "\n" not in line
    assert "\r" not in line


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_app_loggers_never_carry_a_token_in_any_spelling(app, caplog, spelling: str) -> None:
    caplog.set_level(logging.INFO)
    path = SPELLINGS[spelling]
    logging.getLogger("werkzeug").info('127.0.0.1 - - "%s" %s -', f"GET {path} HTTP/1.1", 200)
    app.logger.error("Exception on %s [GET]", path)
    logging.getLogger("gunicorn.error").warning(f"Invalid request {path}")
    assert not _leaks(caplog.text)
    assert caplog.text.count("[redacted]") >= 3


def test_gunicorns_error_log_is_redacted_without_an_app(caplog) -> None:
    from gunicorn.config import Config

    from portal.logs import _FILTER

    error_log = logging.getLogger("gunicorn.error")
    error_log.removeFilter(_FILTER)  # as in gunicorn's master, before any app is made
    logger = GunicornLogger(Config())
    caplog.set_level(logging.DEBUG, logger="gunicorn.error")
    error_log.propagate = True
    try:
        logger.error("Invalid request line: %r", SPELLINGS["encoded_s"])
    finally:
        error_log.propagate = False
    assert not _leaks(caplog.text)
    assert "[redacted]" in caplog.text


@pytest.mark.parametrize(
    "name", ["portal.jobs", "portal.services.runner", "portal.domain.certs", "sqlalchemy.engine"]
)
def test_loggers_below_portal_and_elsewhere_are_redacted_too(app, caplog, name: str) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger(name).warning("link %s\r\nforged line", SPELLINGS["next_encoded"])
    assert not _leaks(caplog.text)
    assert "[redacted]" in caplog.text
    assert "\\r\\nforged line" in caplog.text


def test_a_token_nested_deeper_than_any_server_decodes_is_still_withheld() -> None:
    spelled = f"/s/{TOKEN}"
    for _ in range(15):
        spelled = _quote(spelled)
    assert not _leaks(redact_tokens(f"GET {spelled} HTTP/1.1"))


def test_redaction_leaves_ordinary_lines_alone() -> None:
    line = '127.0.0.1 - - "GET /partners/3?page=2&q=a%20b HTTP/1.1" 200 512 "-" "curl/8.5"'
    assert redact_tokens(line) == line
    assert redact_tokens("/static/portal.css /certificates/ab12.pem") == (
        "/static/portal.css /certificates/ab12.pem"
    )


def test_a_logged_value_cannot_forge_a_second_line(app, caplog) -> None:
    caplog.set_level(logging.INFO)
    app.logger.warning("contact %s", "Eve\r\n127.0.0.1 - admin signed in\x1b[31m")
    record = caplog.records[-1]
    assert "\n" not in record.getMessage()
    assert "\r" not in record.getMessage()
    assert "\x1b" not in record.getMessage()
    assert "\\r\\n127.0.0.1" in record.getMessage()


def test_filter_keeps_a_record_whose_message_cannot_be_formatted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    assert RedactTokensFilter().filter(record)


def _raw_get(port: int, target: str) -> None:
    """Send TARGET exactly as written (no client normalises it) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        while connection.recv(65536):
            pass


@pytest.mark.parametrize("kind", ["gunicorn", "serve"])
def test_a_real_server_logs_no_token_for_tampered_spellings(tmp_path: Path, kind: str) -> None:
    if kind == "gunicorn" and not has_module("gunicorn"):
        pytest.skip("gunicorn is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path / "instance")
    run_portal(env, "init")
    run_portal(env, "identity", "add", "--name", "Acme", "--as2-id", "ACMEAS2")
    run_portal(
        env, "partner", "add", "--name", "Globex", "--as2-id", "GLOBEXAS2",
        "--identity", "ACMEAS2", "--email", "edi@globex.example",
    )  # fmt: skip
    url = run_portal(env, "link", "create", "--partner", "GLOBEXAS2").strip().splitlines()[-1]
    token = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    targets = [
        f"/s/{token}",
        f"/s%2F{token}",
        f"/%73/{token}",
        f"//s//{token}",
        f"/login?next=%2Fs%2F{token}",
        _quote(_quote(f"/s/{token}")).replace("%252F", "/", 1),
    ]
    port = free_port()
    log = tmp_path / f"{kind}.log"
    server = start_server(env, kind, port, log, workers=1, threads=2)
    try:
        for target in targets:
            _raw_get(port, target)
    finally:
        stop(server)
    text = log.read_text()
    if kind == "gunicorn":  # `portal serve` keeps no access log; gunicorn logs every request
        assert text.count("[redacted]") >= len(targets)
    decoded = text
    for _ in range(5):
        assert token not in decoded
        decoded = urllib.parse.unquote(decoded)
