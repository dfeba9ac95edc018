"""Keystore export for AS2 engines: `POST /api/v1/identities/<as2_id>/keystore` and
`portal identity export`, by fingerprint or by which (active, previous, scheduled, accept).

One identity has four generations around T0 (overlap 7 days): A active from T0-10d, B from
T0-1d (so A is previous until T0+6d), C approved for T0+2d (both usages) and E, for
encryption only, approved for T0+3d.
"""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.domain.aliases import certificate_alias
from portal.domain.certs import colon_fingerprint, export
from portal.extensions import keyring
from portal.models import AuditEvent, Certificate, Identity, User
from portal.services import api_tokens, certificates, key_export
from portal.services.errors import ServiceError
from portal.timeutil import utcnow
from tests import certfactory, factories, keystorefiles
from tests.schedulehelpers import schedule_ours

PASSPHRASE = "engine keystore passphrase"
T0 = utcnow().replace(microsecond=0)
DAY = timedelta(days=1)
EXPORTED = "certificate.keystore_exported"


@pytest.fixture(autouse=True)
def cheap_key_encryption(monkeypatch: pytest.MonkeyPatch) -> None:
    """PBKDF2 at 1,000 rounds: production's 100,000 per bag would dominate these tests.

    tests/domain/certs/test_keystore.py and test_export.py use the production count.
    """
    monkeypatch.setattr(export, "_PKCS12_KDF_ROUNDS", 1_000)


def _generation(session: Session, identity: Identity, slot: int, usage: str) -> Certificate:
    """A certificate of IDENTITY on its own key, valid from T0-30d for a year."""
    cert, key = certfactory.make_cert(
        now=T0,
        key=certfactory.rsa_key(2048, slot=20 + slot),
        subject=certfactory.name(identity.as2_id, identity.organisation),
        not_before=T0 - 30 * DAY,
        not_after=T0 + 365 * DAY,
    )
    return certificates.import_pem(
        session, factories.ACTOR, keyring(), identity,
        cert_data=certfactory.pem(cert), key_data=certfactory.key_bytes(key),
        passphrase=None, usage=usage, now=T0 - 20 * DAY,
    ).certificate  # fmt: skip


@pytest.fixture
def station(session: Session, clock: Any) -> dict[str, Any]:
    """The identity ACME-EXPORT, still without certificates, and an engine's token."""
    identity = factories.identity(session, as2_id="ACME-EXPORT", organisation="Acme Corp")
    token = api_tokens.create(session, factories.ACTOR, "engine", ["keys:export"], now=T0)
    session.commit()
    clock.set(T0)
    return {"identity": identity, "token": token.secret}


@pytest.fixture
def world(
    session: Session, station: dict[str, Any], operator: User, approver: User
) -> dict[str, Any]:
    """ACME-EXPORT with generations A, B, C and E, each approved for its moment."""
    made = {}
    for slot, (name, usage, offset) in enumerate(
        [("A", "both", -10), ("B", "both", -1), ("C", "both", 2), ("E", "encryption", 3)]
    ):
        made[name] = _generation(session, station["identity"], slot, usage)
        at = T0 + offset * DAY
        before = at - timedelta(hours=1)
        schedule_ours(session, made[name], at, proposer=operator, approver=approver, now=before)
    session.commit()
    return {**station, **made}


def alias(certificate: Certificate) -> str:
    return certificate_alias("ACME-EXPORT", certificate.sha256)


def post(client: FlaskClient, world: dict[str, Any], body: Any, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {world['token']}"}
    url = kwargs.pop("url", "/api/v1/identities/ACME-EXPORT/keystore")
    if isinstance(body, (bytes, str)):
        return client.post(url, data=body, headers=headers, content_type="application/json")
    return client.post(url, json=body, headers=headers)


def exported_aliases(data: bytes, passphrase: str = PASSPHRASE) -> list[str]:
    """The aliases of DATA's key entries, each key checked against its certificate."""
    found = keystorefiles.entries(data, passphrase.encode())
    assert all(entry.key_matches for entry in found)
    return sorted(entry.alias for entry in found)


def names(world: dict[str, Any], *generations: str) -> list[str]:
    return sorted(alias(world[g]) for g in generations)


def export_events(session: Session) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == EXPORTED).order_by("id"))
    )


def everything_stored(session: Session) -> str:
    return repr(session.execute(text("SELECT * FROM audit_events")).all())


# --- the API ---------------------------------------------------------------------------


def test_accept_is_every_key_for_inbound_traffic_in_one_file(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    response = post(client, world, {"passphrase": PASSPHRASE, "which": "accept"})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-pkcs12"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="ACME-EXPORT-all-accept.p12"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert exported_aliases(response.data) == names(world, "A", "B", "C", "E")
    (event,) = export_events(session)
    assert event.actor == "API token engine"
    assert event.actor_id is None
    assert event.details["which"] == "accept"
    assert event.details["at"] == T0.isoformat()
    assert sorted(event.details["aliases"]) == names(world, "A", "B", "C", "E")
    assert event.details["legacy"] is False
    assert PASSPHRASE not in everything_stored(session)


@pytest.mark.parametrize(
    ("body", "at", "expected"),
    [
        ({"which": "active"}, None, ["B"]),
        ({"which": "previous"}, None, ["A"]),
        ({"which": "scheduled"}, None, ["C", "E"]),
        ({"which": "scheduled", "usage": "signing"}, None, ["C"]),
        ({"which": "scheduled", "usage": "encryption"}, None, ["C", "E"]),
        ({"which": "accept", "usage": "signing"}, None, ["A", "B", "C"]),
        ({"which": "active"}, 2, ["C"]),  # at C's activation
        ({"which": "previous"}, 2, ["B"]),
        ({"which": "active", "usage": "encryption"}, 4, ["E"]),
        ({"which": "active", "usage": "signing"}, 4, ["C"]),
        ({"which": "accept"}, 4, ["B", "C", "E"]),  # B until C + 7 days for signing
        ({"which": "accept"}, 20, ["C", "E"]),
    ],
)
def test_which_follows_the_in_force_rule_at_the_moment_asked(
    client: FlaskClient,
    world: dict[str, Any],
    body: dict[str, str],
    at: int | None,
    expected: list[str],
) -> None:
    if at is not None:
        body = {**body, "at": (T0 + at * DAY).isoformat()}
    response = post(client, world, {"passphrase": PASSPHRASE, **body})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert exported_aliases(response.data) == names(world, *expected)


def test_at_moves_with_the_request_clock(
    client: FlaskClient, world: dict[str, Any], clock: Any
) -> None:
    clock.set(T0 + 2 * DAY)
    response = post(client, world, {"passphrase": PASSPHRASE, "which": "active"})
    assert exported_aliases(response.data) == names(world, "C")


@pytest.mark.parametrize("legacy", [False, True])
def test_one_certificate_by_fingerprint_in_any_notation(
    client: FlaskClient, session: Session, world: dict[str, Any], legacy: bool, tmp_path: Path
) -> None:
    wanted = world["A"]
    body = {"passphrase": PASSPHRASE, "certificate": colon_fingerprint(wanted.sha256)}
    response = post(client, world, {**body, "legacy": legacy})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert exported_aliases(response.data) == [alias(wanted)]
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="ACME-EXPORT-both-{wanted.sha256[:16]}.p12"'
    )
    info = keystorefiles.openssl_info(
        keystorefiles.write(tmp_path, response.data), PASSPHRASE, *(["-legacy"] if legacy else [])
    )
    assert ("3-KeyTripleDES" if legacy else "AES-256-CBC") in info
    (event,) = export_events(session)
    assert event.details["certificate_ids"] == [wanted.id]
    assert event.details["legacy"] is legacy


def test_java_sees_two_generations_under_distinct_aliases(
    client: FlaskClient, world: dict[str, Any], tmp_path: Path
) -> None:
    response = post(client, world, {"passphrase": PASSPHRASE, "which": "accept"})
    path = keystorefiles.write(tmp_path, response.data)
    listed = keystorefiles.keytool_list(path, PASSPHRASE)
    assert sorted(listed) == names(world, "A", "B", "C", "E")
    assert {entry["type"] for entry in listed.values()} == {"PrivateKeyEntry"}


def test_nothing_to_export_is_404_with_a_reason(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    late = (T0 + 30 * DAY).isoformat()
    response = post(client, world, {"passphrase": PASSPHRASE, "which": "previous", "at": late})
    assert response.status_code == 404
    assert response.json["error"].startswith("Identity ACME-EXPORT has no previous certificate")
    early = (T0 - 11 * DAY).isoformat()
    response = post(client, world, {"passphrase": PASSPHRASE, "which": "active", "at": early})
    assert response.status_code == 404
    assert "no active certificate" in response.json["error"]
    unknown = post(client, world, {"passphrase": PASSPHRASE, "certificate": "ab" * 32})
    assert unknown.status_code == 404
    assert export_events(session) == []


def test_unknown_as2_id_is_404(client: FlaskClient, station: dict[str, Any]) -> None:
    url = "/api/v1/identities/NOBODY/keystore"
    response = post(client, station, {"passphrase": PASSPHRASE, "which": "accept"}, url=url)
    assert response.status_code == 404
    assert response.json == {"error": "No identity with AS2 ID NOBODY."}


def test_a_nul_in_the_as2_id_is_404_on_every_database(client, station) -> None:
    """PostgreSQL refuses NUL in a query; the portal answers before asking it."""
    url = "/api/v1/identities/AC%00ME/keystore"
    response = post(client, station, {"passphrase": PASSPHRASE, "which": "accept"}, url=url)
    assert response.status_code == 404
    assert response.is_json


def test_an_as2_id_in_both_environments_needs_one_named(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    twin = factories.identity(session, as2_id="ACME-EXPORT", environment="test")
    _generation(session, twin, 9, "both")
    session.commit()
    body = {"passphrase": PASSPHRASE, "which": "accept"}
    response = post(client, world, body)
    assert response.status_code == 400
    assert "production or test" in response.json["error"]
    chosen = post(client, world, {**body, "environment": "production"})
    assert exported_aliases(chosen.data) == names(world, "A", "B", "C", "E")
    nothing = post(client, world, {**body, "environment": "test"})
    assert nothing.status_code == 404  # the test twin's certificate was never scheduled


GOOD = {"passphrase": PASSPHRASE, "which": "accept"}
BAD_INPUT: list[tuple[Any, str]] = [
    (b"not json", "JSON object"),
    (b'{"passphrase": ', "JSON object"),
    (b"\xff\xfe", "JSON object"),
    ([GOOD], "JSON object"),
    ("a string", "JSON object"),
    ({**GOOD, "pasphrase": "typo"}, "Unknown field pasphrase"),
    ({"which": "accept"}, "passphrase is required"),
    ({**GOOD, "passphrase": None}, "passphrase is required"),
    ({**GOOD, "passphrase": 12345678}, "passphrase must be a string"),
    ({**GOOD, "passphrase": ""}, "passphrase is required"),
    ({**GOOD, "passphrase": "short"}, "at least 8"),
    ({**GOOD, "passphrase": "changeit"}, "too common"),
    ({**GOOD, "passphrase": "aaaaaaaaaaaa"}, "too repetitive"),
    ({**GOOD, "passphrase": "long enough\x00but"}, "control characters"),
    ({**GOOD, "passphrase": "long enough \ud800 lone"}, "unpaired surrogates"),
    ({**GOOD, "passphrase": "x" * 1025}, "at most 1024"),
    ({**GOOD, "which": "everything"}, "which must be one of active, previous"),
    ({**GOOD, "which": 1}, "which must be a string"),
    ({**GOOD, "usage": "both ways"}, "Usage must be"),
    ({**GOOD, "usage": ["signing"]}, "usage must be a string"),
    ({"passphrase": PASSPHRASE}, "either a certificate"),
    ({**GOOD, "certificate": "ab" * 32}, "either a certificate"),
    ({"passphrase": PASSPHRASE, "certificate": "ab" * 32, "usage": "signing"}, "usage goes"),
    ({"passphrase": PASSPHRASE, "certificate": "not hex"}, "not a SHA-256 fingerprint"),
    ({**GOOD, "at": "yesterday"}, "at: 'yesterday' is not a time"),
    ({**GOOD, "at": "2026-12-01T06:00:00"}, "no time zone"),
    ({**GOOD, "at": "9999-12-31T23:59:59-14:00"}, "out of range"),
    ({**GOOD, "at": 1764572400}, "at must be a string"),
    ({**GOOD, "legacy": "yes"}, "legacy must be true or false"),
    ({**GOOD, "environment": "staging"}, "environment must be production or test"),
]


@pytest.mark.parametrize(("body", "message"), BAD_INPUT)
def test_bad_input_is_400_with_a_clear_message(
    client: FlaskClient, session: Session, station: dict[str, Any], body: Any, message: str
) -> None:
    response = post(client, station, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.is_json
    assert message in response.json["error"]
    assert export_events(session) == []


def test_tokens_missing_unknown_revoked_or_without_the_scope(
    client: FlaskClient, session: Session, station: dict[str, Any]
) -> None:
    url = "/api/v1/identities/ACME-EXPORT/keystore"
    reader = api_tokens.create(session, factories.ACTOR, "reader", ["config:read"], now=T0)
    session.commit()
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer cep_unknown"}, 401),
        ({"Authorization": f"Bearer {reader.secret}"}, 403),
    ):
        response = client.post(url, json=GOOD, headers=headers)
        assert response.status_code == status, headers
        assert response.is_json
        assert "error" in response.json
    api_tokens.revoke(session, factories.ACTOR, "engine", now=T0)
    session.commit()
    response = post(client, station, GOOD)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert export_events(session) == []


# --- the command line ------------------------------------------------------------------


def cli(runner: FlaskCliRunner, out: Path, *args: str, stdin: str | None = PASSPHRASE) -> Any:
    extra = ["--pass-stdin"] if stdin is not None else []
    command = ["identity", "export", "--as2-id", "ACME-EXPORT", "--out", str(out), *extra, *args]
    return runner.invoke(args=command, input=None if stdin is None else stdin + "\n")


def test_cli_writes_the_accept_set_with_mode_0600(
    runner: FlaskCliRunner, session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "engine.p12"
    result = cli(runner, out, "--which", "accept")

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert exported_aliases(out.read_bytes()) == names(world, "A", "B", "C", "E")
    assert result.output.strip().splitlines()[1:] == [alias(world[g]) for g in ("B", "A", "C", "E")]
    assert PASSPHRASE not in result.output
    (event,) = export_events(session)
    assert event.actor == "command line"
    assert PASSPHRASE not in everything_stored(session)


def test_cli_by_fingerprint_legacy_and_as_a_staff_user(
    runner: FlaskCliRunner,
    session: Session,
    world: dict[str, Any],
    tmp_path: Path,
    operator: User,
) -> None:
    out = tmp_path / "one.p12"
    result = cli(
        runner, out, "--certificate", world["B"].sha256, "--legacy", "--as", operator.email
    )
    assert result.exit_code == 0, result.output
    assert exported_aliases(out.read_bytes()) == names(world, "B")
    info = keystorefiles.openssl_info(out, PASSPHRASE, "-legacy")
    assert "3-KeyTripleDES" in info
    (event,) = export_events(session)
    assert event.actor == f"{operator.email} (command line)"
    assert event.details["legacy"] is True


def test_cli_prompts_twice_without_echo(
    runner: FlaskCliRunner, world: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "prompted.p12"
    result = runner.invoke(
        args=["identity", "export", "--as2-id", "ACME-EXPORT", "--which", "active", "--out",
              str(out)],
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.output
    assert exported_aliases(out.read_bytes()) == names(world, "B")


def test_cli_at_and_usage(runner: FlaskCliRunner, world: dict[str, Any], tmp_path: Path) -> None:
    later = (T0 + 4 * DAY).isoformat()
    out = tmp_path / "enc.p12"
    result = cli(runner, out, "--which", "active", "--usage", "encryption", "--at", later)
    assert result.exit_code == 0, result.output
    assert exported_aliases(out.read_bytes()) == names(world, "E")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--which", "previous", "--at", (T0 + 30 * DAY).isoformat()], PASSPHRASE,
         "has no previous certificate"),
        (["--which", "accept"], "short", "at least 8"),
        (["--which", "accept"], "changeit", "too common"),
        (["--which", "accept", "--as", "nobody@example.com"], PASSPHRASE, "No enabled user"),
        (["--certificate", "ab" * 32], PASSPHRASE, "has no certificate"),
        (["--certificate", "xyz"], PASSPHRASE, "not a SHA-256 fingerprint"),
    ],
)  # fmt: skip
def test_cli_refusals_are_exit_1_and_leave_no_file(
    runner: FlaskCliRunner,
    session: Session,
    world: dict[str, Any],
    tmp_path: Path,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    out = tmp_path / "refused.p12"
    result = cli(runner, out, *args, stdin=stdin)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    assert stdin not in result.output or stdin == "short"
    assert export_events(session) == []


def test_cli_never_overwrites_a_file(
    runner: FlaskCliRunner, station: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "there.p12"
    out.write_bytes(b"keep me")
    result = cli(runner, out, "--which", "accept")
    assert result.exit_code == 1
    assert "exists" in result.output
    assert out.read_bytes() == b"keep me"


def test_cli_environment_choice(
    runner: FlaskCliRunner, session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    factories.identity(session, as2_id="ACME-EXPORT", environment="test")
    session.commit()
    ambiguous = cli(runner, tmp_path / "a.p12", "--which", "accept")
    assert ambiguous.exit_code == 1
    assert "production or test" in ambiguous.output
    named = cli(runner, tmp_path / "b.p12", "--which", "accept", "--environment", "production")
    assert named.exit_code == 0, named.output


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--which", "accept", "--certificate", "ab" * 32],
        ["--certificate", "ab" * 32, "--usage", "signing"],
        ["--which", "everything"],
        ["--which", "accept", "--usage", "both-ways"],
        ["--which", "accept", "--at", "yesterday"],
        ["--which", "accept", "--at", "9999-12-31T23:59:59-14:00"],
        ["--which", "accept", "--environment", "staging"],
    ],
)
def test_cli_usage_errors_are_exit_2(
    runner: FlaskCliRunner, station: dict[str, Any], tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "usage.p12"
    result = cli(runner, out, *args)
    assert result.exit_code == 2, result.output
    assert not out.exists()


def test_cli_pass_stdin_needs_a_line(
    runner: FlaskCliRunner, station: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "empty.p12"
    result = cli(runner, out, "--which", "accept", stdin="")
    assert result.exit_code == 2
    assert not out.exists()


# --- the staff page and the passphrase rule --------------------------------------------


def test_the_staff_export_names_its_entry_by_alias(
    app: Flask, operator_client: FlaskClient, world: dict[str, Any]
) -> None:
    wanted = world["C"]
    form = {"passphrase": PASSPHRASE, "confirm": PASSPHRASE}
    response = operator_client.post(f"/certificates/{wanted.id}/keystore", data=form)
    assert response.status_code == 200
    assert exported_aliases(response.data) == [alias(wanted)]


def test_the_staff_export_refuses_a_common_passphrase(
    app: Flask, operator_client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    form = {"passphrase": "changeit", "confirm": "changeit"}
    response = operator_client.post(f"/certificates/{world['C'].id}/keystore", data=form)
    assert response.status_code == 422
    assert "too common" in response.get_data(as_text=True)
    assert export_events(session) == []


@pytest.mark.parametrize(
    "passphrase",
    ["correct horse battery", "Tr0ub4dor&3", "pässwörd-€uro", "emoji 😀 allowed", "x1y2z3w4v5"],
)
def test_acceptable_passphrases(passphrase: str) -> None:
    assert key_export.check_export_passphrase(passphrase) == passphrase.encode()


@pytest.mark.parametrize(
    "passphrase", ["", "1234567", "12345678", "PASSWORD", "  changeit ", "abababab", "\t" * 9]
)
def test_weak_passphrases(passphrase: str) -> None:
    with pytest.raises(ServiceError) as refused:
        key_export.check_export_passphrase(passphrase)
    assert refused.value.field == "passphrase"


def test_the_documented_example_body_is_accepted(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    body = json.loads('{"passphrase": "engine keystore passphrase", "usage": "signing",'
                      ' "which": "active"}')  # fmt: skip
    response = post(client, world, body)
    assert response.status_code == 200
    assert exported_aliases(response.data) == names(world, "B")
