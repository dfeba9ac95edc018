"""Request size limits on every route with a body (issue 13): a clean 413 or 422, never 500.

Every POST route of tests/test_forms_never_500.py's table gets a body over its limit
(1 MiB, PORTAL's MAX_CONTENT_LENGTH; partner uploads 3 x 64 KiB) and then each of its fields
filled with 100 000 characters, which fits under every limit and over every column.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.models import User
from portal.web import UPLOAD_ENDPOINTS, UPLOAD_REQUEST_LIMIT
from tests.test_forms_never_500 import ROUTES, World, encoded

HUGE = "x" * 100_000


def _limit(app: Flask, route: str) -> int:
    return UPLOAD_REQUEST_LIMIT if route in UPLOAD_ENDPOINTS else app.config["MAX_CONTENT_LENGTH"]


def test_the_limits_are_what_the_readme_says(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert UPLOAD_REQUEST_LIMIT == 3 * 64 * 1024
    assert len(HUGE) < UPLOAD_REQUEST_LIMIT


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_body_over_the_limit_is_refused_with_413(
    app: Flask, route: str, session: Session, make_user: Callable[..., User], login: Any
) -> None:
    admin = make_user("admin")
    client = login(admin)
    url, fields = ROUTES[route](World(session, admin))
    padding = "p" * (_limit(app, route.split("[")[0]) + 1)
    response = client.post(
        url, data={**encoded(fields), "padding": padding}, content_type="multipart/form-data"
    )
    assert response.status_code == 413
    raw = client.post(url, data=padding.encode(), content_type="application/octet-stream")
    assert raw.status_code == 413


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_huge_field_gets_a_clean_answer(
    route: str, session: Session, make_user: Callable[..., User], login: Any
) -> None:
    admin = make_user("admin")
    client = login(admin)
    url, fields = ROUTES[route](World(session, admin))
    failures = []
    for name, value in fields.items():
        if not isinstance(value, str):
            continue  # files have their own limit (tests/test_partner_upload.py)
        response = client.post(
            url, data=encoded({**fields, name: HUGE}), content_type="multipart/form-data"
        )
        if response.status_code >= 500:
            failures.append(f"{name}: {response.status_code}")
    assert failures == [], f"{route} {url}"


def test_the_api_refuses_a_body_over_the_limit(app: Flask, client) -> None:
    response = client.post(
        "/api/v1/identities/OURAS2/keystore",
        data=io.BytesIO(b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}"),
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.is_json
