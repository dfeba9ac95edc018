"""Cache-Control and HSTS on every route (issue 13): nothing with a secret is kept by a cache.

Every staff route (tests/test_access.py's matrix), every link page and download, /login
and the API answer `Cache-Control: no-store`; static files keep caching. HSTS is sent when
the portal is reached over HTTPS, directly, behind a trusted proxy or per PORTAL_BASE_URL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from portal import create_app
from portal.extensions import keyring, link_signer
from portal.services import api_tokens, links
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure, test_settings
from tests.test_access import EXPECTED, _url, csr_pem, ids  # noqa: F401  (fixtures)

HSTS = "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_every_staff_route_answers_no_store(app: Flask, client_as, ids, endpoint: str) -> None:  # noqa: F811
    method, _ = EXPECTED[endpoint]
    response = client_as("admin").open(_url(app, endpoint, ids), method=method)
    assert response.headers.get("Cache-Control") == "no-store", response.status_code


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_the_sign_in_redirect_of_every_staff_route_answers_no_store(
    app: Flask,
    client,
    ids,  # noqa: F811
    endpoint: str,
) -> None:
    method, _ = EXPECTED[endpoint]
    response = client.open(_url(app, endpoint, ids), method=method)
    assert response.headers.get("Cache-Control") == "no-store"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_sign_in_page_answers_no_store(client, method: str) -> None:
    response = client.open("/login", method=method, data={"email": "x@example.com"})
    assert response.headers.get("Cache-Control") == "no-store"


@pytest.fixture
def token_and_sha(session) -> tuple[str, str]:
    partner = factories.partner(session)
    certificate = factories.identity_certificate(session, keyring(), partner.identity)
    _link, token = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=1), max_uploads=3, now=utcnow(),
    )  # fmt: skip
    return token, certificate.sha256


LINK_REQUESTS = [
    ("GET", "/s/{token}"),
    ("GET", "/s/{token}/certificates/{sha}.pem"),
    ("GET", "/s/{token}/certificates.json"),
    ("GET", "/s/{token}/window.ics"),
    ("GET", "/s/not-a-token"),
    ("POST", "/s/{token}/upload"),
    ("POST", "/s/{token}/certificate"),
    ("POST", "/s/{token}/window"),
    ("POST", "/s/{token}/acknowledge"),
]


@pytest.mark.parametrize(("method", "path"), LINK_REQUESTS)
def test_every_link_page_and_download_answers_no_store(
    client, token_and_sha, method: str, path: str
) -> None:
    token, sha = token_and_sha
    response = client.open(path.format(token=token, sha=sha), method=method)
    assert response.status_code < 500
    assert response.headers.get("Cache-Control") == "no-store"


@pytest.mark.parametrize("path", ["/api/v1/whoami", "/api/v1/config", "/api/v1/openapi.json"])
def test_api_answers_no_store(client, session, path: str) -> None:
    made = api_tokens.create(session, factories.ACTOR, "headers", ["config:read"], now=utcnow())
    response = client.get(path, headers={"Authorization": f"Bearer {made.secret}"})
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") == "no-store"


def test_static_files_and_the_zone_list_keep_caching(client) -> None:
    static = client.get("/static/portal.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")
    zones = client.get("/time-zones.json")
    assert zones.headers["Cache-Control"].startswith("public, max-age=")


def test_no_hsts_over_plain_http(client) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_hsts_when_the_request_itself_is_https(client) -> None:
    response = client.get("/login", base_url="https://portal.test")
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_hsts_when_the_base_url_is_https(app: Flask, client) -> None:
    reconfigure(app, BASE_URL="https://portal.example")
    assert client.get("/healthz").headers["Strict-Transport-Security"] == HSTS


def test_hsts_seconds_setting_and_zero_turns_it_off(app: Flask, client) -> None:
    reconfigure(app, HSTS_SECONDS=600)
    response = client.get("/login", base_url="https://portal.test")
    assert response.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
    reconfigure(app, HSTS_SECONDS=0)
    assert (
        "Strict-Transport-Security"
        not in client.get("/login", base_url="https://portal.test").headers
    )


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(
    tmp_path: Path, database_url: str
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    untrusted = create_app(test_settings(tmp_path / "a", database_url))
    response = untrusted.test_client().get("/healthz", headers=forwarded)
    assert "Strict-Transport-Security" not in response.headers
    trusted = create_app(test_settings(tmp_path / "b", database_url, TRUSTED_PROXIES=1))
    response = trusted.test_client().get("/healthz", headers=forwarded)
    assert response.headers["Strict-Transport-Security"] == HSTS


@pytest.mark.parametrize("value", [-1, "yes", True, 10**9])
def test_a_wrong_hsts_setting_is_refused(tmp_path: Path, database_url: str, value) -> None:
    from portal.config import ConfigError

    with pytest.raises(ConfigError, match="PORTAL_HSTS_SECONDS"):
        create_app(test_settings(tmp_path, database_url, HSTS_SECONDS=value))
