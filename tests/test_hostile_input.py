"""Property: no form POST route and no JSON endpoint answers 5xx to hostile text (issue 13).

Hypothesis fills one field at a time (of tests/test_forms_never_500.py's route table, and of
the API's query strings and JSON bodies) with control characters, bidi controls, NUL, HTML,
huge strings and invalid UTF-8 (raw bytes in a urlencoded body). Examples per route are few
and there is no deadline, so the suite stays fast; a failure prints the smallest input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from portal.domain.scopes import Scope
from portal.models import User
from portal.services import api_tokens
from portal.timeutil import utcnow
from tests import factories
from tests.test_forms_never_500 import ROUTES, World, encoded

NASTY = [
    "\x00",
    "\x1b[2J\x1b[31mred",
    "line\r\nSet-Cookie: x=1",
    "Eve\u202egnp.exe",
    "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\ud7ff\ue000\uffff",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00%0d%0a%e2%80%ae",
    "9" * 400,
    "x" * 70_000,
]
ALPHABET = list('aZ <>&"\x00\x07\x1b\r\n\t\x7f\x85\x9b\u202a\u202e\u2066\u200f\u061c\ufeff\u00e9')
HOSTILE_TEXT = st.one_of(
    st.sampled_from(NASTY), st.text(alphabet=st.sampled_from(ALPHABET), max_size=300)
)
# Bytes for a urlencoded body: invalid UTF-8 included (lone continuation bytes, overlongs).
HOSTILE_BYTES = st.one_of(
    st.sampled_from([b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80abc", b"\xe2\x80\xae"]),
    st.binary(max_size=200),
)
FEW = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)


def _fields_of(fields: dict[str, Any]) -> list[str]:
    return [name for name, value in fields.items() if isinstance(value, str | list)] or ["x"]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_form_route_answers_5xx_to_hostile_text(
    route: str, session: Session, make_user: Callable[..., User], login: Any
) -> None:
    admin = make_user("admin")
    client = login(admin)
    url, fields = ROUTES[route](World(session, admin))
    names = _fields_of(fields)

    @FEW
    @given(name=st.sampled_from(names), text=HOSTILE_TEXT, raw=HOSTILE_BYTES)
    def check(name: str, text: str, raw: bytes) -> None:
        response = client.post(
            url, data=encoded({**fields, name: text}), content_type="multipart/form-data"
        )
        assert response.status_code < 500, (name, text[:80])
        plain = {k: v for k, v in fields.items() if isinstance(v, str) and k != name}
        body = f"{urlencode(plain)}&{name}={quote_from_bytes(raw)}".encode()
        response = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (name, raw)

    check()


@pytest.fixture
def bearer(session: Session) -> dict[str, str]:
    made = api_tokens.create(
        session, factories.ACTOR, "hostile", [Scope.CONFIG_READ, Scope.KEYS_EXPORT], now=utcnow()
    )
    return {"Authorization": f"Bearer {made.secret}"}


@FEW
@given(name=st.sampled_from(["at", "environment", "identity", "partner"]), text=HOSTILE_TEXT)
def test_the_configuration_api_never_answers_5xx_to_hostile_queries(
    client, bearer, name: str, text: str
) -> None:
    response = client.get("/api/v1/config?" + urlencode({name: text}), headers=bearer)
    assert response.status_code < 500
    assert response.is_json


@FEW
@given(
    name=st.sampled_from(["passphrase", "certificate", "which", "usage", "environment", "at"]),
    text=HOSTILE_TEXT,
    as2_id=st.one_of(st.just("OURAS2"), HOSTILE_TEXT.filter(lambda t: t and "/" not in t)),
)
def test_the_keystore_api_never_answers_5xx_to_hostile_json(
    client, session, bearer, name: str, text: str, as2_id: str
) -> None:
    if not _has_ours(session):
        factories.identity(session, as2_id="OURAS2")
    body = {"passphrase": "a long passphrase", name: text}
    response = client.post(
        f"/api/v1/identities/{quote_from_bytes(as2_id.encode())}/keystore",
        data=json.dumps(body),
        content_type="application/json",
        headers=bearer,
    )
    assert response.status_code < 500
    assert response.is_json or response.mimetype == "application/x-pkcs12"


@FEW
@given(raw=HOSTILE_BYTES)
def test_the_keystore_api_never_answers_5xx_to_a_body_that_is_not_json(
    client, bearer, raw: bytes
) -> None:
    response = client.post(
        "/api/v1/identities/OURAS2/keystore",
        data=raw,
        content_type="application/json",
        headers=bearer,
    )
    assert response.status_code < 500
    assert response.is_json


def _has_ours(session: Session) -> bool:
    from sqlalchemy import select

    from portal.models import Identity

    return session.scalar(select(Identity.id).where(Identity.as2_id == "OURAS2")) is not None
