"""The OpenAPI 3.1 description of /api/v1: valid, complete, served, and true of the app.

Truth is checked by schemathesis: it reads the description the app serves, generates
requests for every operation (valid ones, and in a second pass invalid ones), sends them to
the app in process with a good token, no token, an unknown token or a token lacking the
scope, and checks every answer against the description (status code, content type, body
schema, required headers) and that none is a server error. A route that is not described,
or a description with no route, fails test_every_api_route_is_described.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from datetime import timedelta
from importlib.resources import files
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from sqlalchemy.orm import Session

from portal.extensions import keyring
from portal.models import User
from portal.services import api_tokens, approvals
from portal.timeutil import utcnow
from tests import factories
from tests.schedulehelpers import actor, receive, schedule_ours, share

SPEC: dict[str, Any] = json.loads(
    files("portal.web.api").joinpath("openapi.json").read_text(encoding="utf-8")
)
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in HTTP_METHODS
)
# Described, built on another branch: tested here once its route is merged.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Fast and the same on every run: a fixed number of examples per operation and mode.
# PORTAL_SCHEMATHESIS_EXAMPLES=1000 digs deeper (minutes) when the API changes a lot.
SETTINGS = hypothesis.settings(
    max_examples=int(os.environ.get("PORTAL_SCHEMATHESIS_EXAMPLES", "50")),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
        hypothesis.HealthCheck.function_scoped_fixture,
    ],
)


def app_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every /api/v1 route of APP (HEAD and OPTIONS are Flask's)."""
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routed.add((method, path))
    return routed


def endpoint_of(app: Flask, method: str, path: str) -> str:
    adapter = app.url_map.bind("portal.test")
    concrete = re.sub(r"\{[^}]+\}", "X", path)
    endpoint, _ = adapter.match(concrete, method=method)
    return str(endpoint)


# --- the document itself -------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC)  # raises on anything invalid, $refs resolved


def test_it_is_served_without_a_token_exactly_as_checked_in(client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == SPEC


def test_every_api_route_is_described_and_every_description_is_routed(app: Flask) -> None:
    routed = app_operations(app)
    assert routed, "no /api/v1 routes found"
    assert routed - set(OPERATIONS) == set(), "routes missing from openapi.json"
    assert set(OPERATIONS) <= routed, "described operations with no route"


def test_each_operation_names_the_scope_its_view_requires(app: Flask) -> None:
    for method, path in sorted(app_operations(app)):
        operation = SPEC["paths"][path][method.lower()]
        view = app.view_functions[endpoint_of(app, method, path)]
        required = getattr(view, "required_scope", None)
        assert operation.get("x-required-scope") == required, (method, path)
        if required is None:
            assert operation.get("security") == [], "a public operation must say so"
        else:
            assert "security" not in operation, "the document's bearerAuth applies"
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_a_method_not_described_is_a_json_405_listing_the_described_ones(
    app: Flask, client, path: str
) -> None:
    """What schemathesis's `unsupported_method` check asks (it runs only in its CLI's
    coverage phase): a 405 with `Allow`, here also a JSON body like every API error."""
    described = {m.upper() for m in SPEC["paths"][path] if m in HTTP_METHODS}
    if not any(p == path for _, p in app_operations(app)):
        pytest.skip(f"{path} is described but not routed in this app yet")
    url = re.sub(r"\{[^}]+\}", "OURAS2", path)
    for method in sorted({m.upper() for m in HTTP_METHODS} - described):
        response = client.open(url, method=method)
        assert response.status_code == 405, (method, path)
        assert response.is_json
        assert response.json["error"]
        assert set(response.headers["Allow"].split(", ")) - {"HEAD", "OPTIONS"} == described


def test_an_unknown_api_address_is_a_json_404(client) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"]


# --- schemathesis against the app ----------------------------------------------------


@pytest.fixture
def tokens(session: Session) -> dict[str, str | None]:
    """The Authorization header each kind of caller sends (None: no header at all)."""

    def bearer(name: str, scopes: tuple[str, ...]) -> str:
        made = api_tokens.create(session, factories.ACTOR, name, scopes, now=utcnow())
        return f"Bearer {made.secret}"

    return {
        "all scopes": bearer("engine-all", ("config:read", "keys:export")),
        "config:read only": bearer("engine-read", ("config:read",)),
        "keys:export only": bearer("engine-keys", ("keys:export",)),
        "none": None,
        "unknown": "Bearer cep_not-a-token",
        "not bearer": "Basic ZW5naW5lOnNlY3JldA==",
    }


@pytest.fixture
def seeded(session: Session, make_user: Callable[..., User]) -> None:
    """Non-trivial answers: an identity with an active and a scheduled signing certificate
    (so `accept` has two and `next_change_at` is set), its partner with a scheduled upload,
    and a second identity with a partner in the test environment."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session, as2_id="OURAS2")
    old = factories.identity_certificate(session, keyring(), identity, usage="signing")
    new = factories.identity_certificate(session, keyring(), identity, usage="signing")
    now = utcnow().replace(microsecond=0)
    later = now + timedelta(days=2)
    schedule_ours(session, old, now, proposer=proposer, approver=second, now=now)
    schedule_ours(session, new, later, proposer=proposer, approver=second, now=now)
    partner = factories.partner(session, identity, as2_id="PARTNERAS2")
    link, _ = share(session, partner)
    approvals.approve_submission(
        session, actor(second), receive(session, link), activate_at=later, now=now
    )
    other = factories.identity(session, as2_id="TESTAS2", environment="test")
    factories.partner(session, other, as2_id="TESTPARTNER")


def run_schemathesis(
    app: Flask,
    schema: Any,
    method: str,
    path: str,
    mode: GenerationMode,
    tokens: dict[str, str | None],
) -> None:
    """Generate requests for one operation, send them to APP and check every answer."""
    operation = schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)

    # Mostly the token with every scope, so that most requests reach the view.
    callers = ["all scopes"] * (len(tokens) - 1) + sorted(tokens)

    @SETTINGS
    @hypothesis.given(case=strategy, caller=st.sampled_from(callers))
    def check(case: Any, caller: str) -> None:
        for name in [h for h in (case.headers or {}) if h.lower() == "authorization"]:
            del case.headers[name]
        header = tokens[caller]
        case.call_and_validate(headers={"Authorization": header} if header else None, checks=CHECKS)

    check()


def has_input(method: str, path: str) -> bool:
    """Whether the operation takes anything schemathesis can make invalid."""
    operation = SPEC["paths"][path][method.lower()]
    return bool(operation.get("parameters") or operation.get("requestBody"))


# Valid requests for every operation; invalid ones for those that take any input.
RUNS = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or has_input(method, path)
]


@pytest.fixture
def served_schema(app: Flask) -> Any:
    """The description as the app serves it, loaded by schemathesis."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
@pytest.mark.usefixtures("seeded")
def test_schemathesis_finds_nothing(
    app: Flask, served_schema: Any, tokens, method: str, path: str, mode: GenerationMode
) -> None:
    assert (method, path) in app_operations(app)
    run_schemathesis(app, served_schema, method, path, mode, tokens)


@pytest.mark.usefixtures("seeded")
def test_schemathesis_catches_a_description_that_is_wrong(app: Flask, tokens) -> None:
    """The check above can fail: a Cert that requires a key the app never sends, and an
    ETag described as a number, are each reported."""
    wrong_cert = copy.deepcopy(SPEC)
    wrong_cert["components"]["schemas"]["Cert"]["required"].append("thumbprint")
    wrong_etag = copy.deepcopy(SPEC)
    headers = wrong_etag["paths"]["/api/v1/config"]["get"]["responses"]["200"]["headers"]
    headers["ETag"]["schema"] = {"type": "integer"}
    for wrong, expected in (
        (wrong_cert, "Response violates schema"),
        (wrong_etag, "Response header does not conform to the schema"),
    ):
        schema = schemathesis.openapi.from_dict(wrong)
        schema.app = app
        with pytest.raises((Failure, FailureGroup)) as found:
            run_schemathesis(app, schema, "GET", "/api/v1/config", GenerationMode.POSITIVE, tokens)
        failures = (
            found.value.exceptions if isinstance(found.value, FailureGroup) else [found.value]
        )
        assert any(failure.title == expected for failure in failures), failures
