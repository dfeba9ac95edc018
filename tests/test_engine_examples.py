"""The engine recipes in examples/, run against the portal served on loopback.

The app runs on its own migrated database behind a real HTTP server (werkzeug, port 0),
its clock set by the test (never slept through); the examples talk to it over HTTP with a
real API token, as an engine would.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from flask import Flask
from werkzeug.serving import make_server

from portal import create_app
from portal.clock import install_clock
from portal.database import make_engine
from portal.domain import certs
from portal.domain.aliases import certificate_alias
from portal.extensions import db, keyring
from portal.migrate import upgrade
from portal.models import Certificate, User
from portal.services import api_tokens, approvals, key_export
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import TEST_PASSWORD, SettableClock, test_settings
from tests.oscryptofix import load_pyas2lib
from tests.schedulehelpers import actor, iso_z, partner_cert, receive, schedule_ours, share

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECOND = timedelta(seconds=1)
PASSPHRASE = "engine test passphrase"


def example(name: str) -> ModuleType:
    """Import examples/NAME.py under its own name (the examples import each other so)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- the portal on loopback --------------------------------------------------------------


class Recorder:
    """WSGI middleware remembering each request's path, If-None-Match and status."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        entry = {
            "path": environ["PATH_INFO"],
            "query": environ.get("QUERY_STRING", ""),
            "if_none_match": environ.get("HTTP_IF_NONE_MATCH"),
        }
        self.seen.append(entry)

        def start(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


@dataclass
class Live:
    """The served app: its base URL, clock, request log, and what the world set up."""

    app: Flask
    url: str
    clock: SettableClock
    recorder: Recorder
    world: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def live(tmp_path: Path, fresh_databases) -> Iterator[Live]:
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(test_settings(tmp_path, url))
    clock = SettableClock()
    install_clock(app, clock)
    recorder = Recorder(app)
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield Live(app, f"http://127.0.0.1:{server.server_port}", clock, recorder)
    finally:
        server.shutdown()
        serving.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def world(live: Live) -> dict[str, Any]:
    """OURAS2 (one certificate with its key, in force) and its partner PARTNERAS2, whose
    certificate `old` is in force and whose `new` one is approved for T, two days ahead.
    Tokens: `token` (config:read), `keys_token` (keys:export only)."""
    now = utcnow().replace(microsecond=0)
    at = now + timedelta(days=2)
    partner_keys = (certfactory.rsa_key(3072, slot=0), certfactory.rsa_key(3072, slot=1))
    with live.app.app_context():
        session = db.session
        proposer = factories.user(session, role="operator", password=TEST_PASSWORD)
        approver: User = factories.user(session, role="approver", password=TEST_PASSWORD)
        identity = factories.identity(session, as2_id="OURAS2", organisation="Acme Corp")
        ours = factories.identity_certificate(session, keyring(), identity, usage="both")
        schedule_ours(session, ours, now, proposer=proposer, approver=approver, now=now)
        partner = factories.partner(session, identity, as2_id="PARTNERAS2")
        link, _ = share(session, partner)
        made = [partner_cert(key=key, now=now) for key in partner_keys]
        stored: list[Certificate] = []
        for cert, moment in zip(made, (now, at), strict=True):
            submission = receive(session, link, cert, now=now)
            approved = approvals.approve_submission(
                session, actor(approver), submission, activate_at=moment, now=now
            )
            assert approved is not None
            stored.append(approved)
        our_p12 = key_export.export_pkcs12(
            session, factories.ACTOR, keyring(), ours, passphrase=PASSPHRASE, legacy=False
        )
        token = api_tokens.create(session, factories.ACTOR, "engine", ("config:read",), now=now)
        keys_only = api_tokens.create(session, factories.ACTOR, "keys", ("keys:export",), now=now)
        session.commit()
        live.world.update(
            now=now,
            at=at,
            token=token.secret,
            keys_token=keys_only.secret,
            ours_alias=certificate_alias("OURAS2", ours.sha256),
            ours_pem=certs.export_pem(ours.der).decode(),
            our_p12=our_p12,
            old_alias=certificate_alias("PARTNERAS2", stored[0].sha256),
            new_alias=certificate_alias("PARTNERAS2", stored[1].sha256),
            old_pem=certs.export_pem(stored[0].der).decode(),
            new_pem=certs.export_pem(stored[1].der).decode(),
            partner_keys=list(zip(made, partner_keys, strict=True)),
        )
    return live.world


def poller(live: Live, out: Path, token: str | None = None, **options: Any) -> Any:
    poll = example("poll_config")
    client = poll.ConfigClient(live.url, lambda: token or live.world["token"])
    lines: list[str] = []
    made = poll.Poller(client, out, now=live.clock.now, log=lines.append, **options)
    made.lines = lines
    return made


def config_requests(live: Live) -> list[dict[str, Any]]:
    return [r for r in live.recorder.seen if r["path"] == "/api/v1/config"]


# --- poll_config.py ----------------------------------------------------------------------


def test_poll_writes_send_and_accept_files_then_304_then_follows_the_switch(
    live: Live, world: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "certs"
    at = world["at"]
    signing = out / "partners" / "PARTNERAS2" / "signing"
    old_file = signing / f"accept-{world['old_alias']}.pem"
    new_file = signing / f"accept-{world['new_alias']}.pem"
    live.clock.set(at - timedelta(minutes=5))
    poll = poller(live, out, interval=3600)

    first = poll.round()
    assert first.status == 200
    assert (signing / "send.pem").read_text() == world["old_pem"]
    assert old_file.read_text() == world["old_pem"]
    assert new_file.read_text() == world["new_pem"]  # scheduled: accepted before T
    ours = out / "identities" / "OURAS2" / "encryption"
    assert (ours / "send.pem").read_text() == world["ours_pem"]
    assert json.loads((out / "config.json").read_text()) == first.document
    assert (out / ".etag").read_text() == first.etag
    # It sleeps until the switch (plus a second), not for the whole interval.
    assert poll.wait_after(first) == pytest.approx(301, abs=1)

    second = poll.round()
    assert second.status == 304
    last = config_requests(live)[-1]
    assert last["if_none_match"] == first.etag
    assert last["status"] == 304

    # A restarted poller resumes from the files on disk: its first request is a 304 too.
    restarted = poller(live, out, interval=3600)
    restarted.resume()
    assert restarted.round().status == 304
    assert config_requests(live)[-1]["if_none_match"] == first.etag

    live.clock.set(at)  # the boundary: the answer changed, so does the ETag
    crossed = poll.round()
    assert crossed.status == 200
    assert crossed.etag != first.etag
    assert (signing / "send.pem").read_text() == world["new_pem"]
    assert old_file.exists()  # previous, accepted during the overlap
    overlap = timedelta(seconds=crossed.document["overlap_seconds"])
    assert poll.wait_after(crossed) == 3600  # the overlap ends later than the interval

    live.clock.set(at + overlap)
    ended = poll.round()
    assert ended.status == 200
    assert not old_file.exists()
    assert new_file.read_text() == world["new_pem"]
    assert sorted(p.name for p in signing.iterdir()) == sorted(["send.pem", new_file.name])


def test_poll_keeps_the_files_and_backs_off_when_refused_or_unreachable(
    live: Live, world: dict[str, Any], tmp_path: Path
) -> None:
    poll_config = example("poll_config")
    out = tmp_path / "certs"
    live.clock.set(world["at"] - timedelta(hours=1))
    assert poller(live, out).round().status == 200
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    for token, status in (("cep_wrong", 401), (world["keys_token"], 403)):
        refused = poller(live, out, token=token, max_backoff=30)
        for expected in (2, 4, 8, 16, 30, 30):
            answer, wait = refused.step()
            assert answer is None
            assert expected * 0.8 <= wait <= expected * 1.2
        assert config_requests(live)[-1]["status"] == status
        assert "refused" in refused.lines[-1]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    token_file = tmp_path / "token"
    token_file.write_text(world["keys_token"] + "\n")
    common = ["--out", str(out), "--token-file", str(token_file), "--once"]
    assert poll_config.main(["--url", closed, *common]) == 4
    assert poll_config.main(["--url", live.url, *common]) == 3
    token_file.write_text(world["token"])
    assert poll_config.main(["--url", live.url, *common]) == 0  # 304: resumed from disk
    assert config_requests(live)[-1]["status"] == 304


# --- aws_transfer_import.py ----------------------------------------------------------------


def aws_commands(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str], moment: datetime
) -> dict[tuple[str, str], list[str]]:
    """The dry run's commands at MOMENT, by (usage, alias)."""
    live.clock.set(moment)
    out = tmp_path / f"state-{moment.timestamp():.0f}"
    assert poller(live, out).round().status == 200
    aws = example("aws_transfer_import")
    capsys.readouterr()
    code = aws.main(["--config", str(out / "config.json"), "--workdir", str(tmp_path / "w")])
    assert code == 0
    commands = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    assert all(c[:3] == ["aws", "transfer", "import-certificate"] for c in commands)

    def option(command: list[str], name: str) -> str:
        return command[command.index(name) + 1]

    return {
        (option(c, "--usage"), option(c, "--description").rsplit(":", 1)[1]): c for c in commands
    }


def dates(command: list[str]) -> tuple[str | None, str | None]:
    def value(name: str) -> str | None:
        return command[command.index(name) + 1] if name in command else None

    return value("--active-date"), value("--inactive-date")


def test_aws_dry_run_dates_for_scheduled_and_previous_certificates(
    live: Live, world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at, now = world["at"], world["now"]
    old, new = world["old_alias"], world["new_alias"]
    before = aws_commands(live, tmp_path, capsys, at - timedelta(minutes=5))
    overlap = timedelta(days=7)  # the app's default CERTIFICATE_OVERLAP_DAYS
    # A partner's SIGNING certificates receive: their accept window.
    assert dates(before[("SIGNING", new)]) == (iso_z(now), None)  # from approval, open
    assert dates(before[("SIGNING", old)]) == (iso_z(now), iso_z(at + overlap))
    # A partner's ENCRYPTION certificates send: from activation to the next one's.
    assert dates(before[("ENCRYPTION", new)]) == (iso_z(at), None)
    assert dates(before[("ENCRYPTION", old)]) == (iso_z(now), iso_z(at))
    # Our own: SIGNING sends, ENCRYPTION receives; nothing scheduled, so open-ended.
    assert dates(before[("SIGNING", world["ours_alias"])]) == (iso_z(now), None)
    assert dates(before[("ENCRYPTION", world["ours_alias"])]) == (iso_z(now), None)
    command = before[("SIGNING", new)]
    assert command[command.index("--certificate") + 1].startswith("file://")
    assert (tmp_path / "w" / f"{new}.pem").read_text() == world["new_pem"]

    after = aws_commands(live, tmp_path, capsys, at + SECOND)  # old is now `previous`
    assert dates(after[("SIGNING", old)]) == (iso_z(now), iso_z(at + overlap))
    assert dates(after[("ENCRYPTION", old)]) == (iso_z(now), iso_z(at))
    gone = aws_commands(live, tmp_path, capsys, at + overlap)
    assert ("SIGNING", old) not in gone


# --- openas2_sync.py -----------------------------------------------------------------------

PARTNERSHIPS = """<?xml version="1.0" encoding="UTF-8"?>
<partnerships>
    <!-- our side -->
    <partner name="Us" as2_id="OURAS2" x509_alias="mycompany" email="as2@example.com"/>
    <partner name="Them" as2_id="PARTNERAS2" x509_alias="partnera"/>
    <partner name="Other" as2_id="SOMEONE_ELSE" x509_alias="other"/>
    <partnership name="Them-to-Us">
        <sender name="Them"/>
        <receiver name="Us"/>
        <attribute name="sign" value="SHA-256"/>
    </partnership>
</partnerships>
"""


def openas2_state(live: Live, tmp_path: Path, moment: datetime) -> Path:
    live.clock.set(moment)
    out = tmp_path / f"state-{moment.timestamp():.0f}"
    assert poller(live, out).round().status == 200
    return out / "config.json"


def test_openas2_fallback_follows_the_switch(
    live: Live, world: dict[str, Any], tmp_path: Path
) -> None:
    sync = example("openas2_sync")
    at, old, new = world["at"], world["old_alias"], world["new_alias"]
    for moment, expected in (
        (at - timedelta(minutes=5), (old, new)),  # before T: the scheduled one falls back
        (at + SECOND, (new, old)),  # after T: the previous one does
        (at + timedelta(days=7), (new, None)),  # after the overlap: no fallback
    ):
        document = json.loads(openas2_state(live, tmp_path, moment).read_text())
        plan = sync.plan(document)
        assert plan.aliases["PARTNERAS2"] == expected
        assert plan.aliases["OURAS2"] == (world["ours_alias"], None)
        assert plan.warnings == []
    # An owner without any certificate is left as it is (its alias is not removed).
    empty = {"send": None, "accept": [], "active": None, "previous": None, "scheduled": []}
    document["partners"].append(
        {"as2_id": "NEWAS2", "certificates": {"signing": empty, "encryption": empty}}
    )
    assert "NEWAS2" not in sync.plan(document).aliases


def test_openas2_dry_run_prints_the_keytool_commands_and_changes_nothing(
    live: Live, world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sync = example("openas2_sync")
    config = openas2_state(live, tmp_path, world["at"] - timedelta(minutes=5))
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{world['ours_alias']}.p12").write_bytes(world["our_p12"])
    partnerships = tmp_path / "partnerships.xml"
    partnerships.write_text(PARTNERSHIPS)
    keystore = tmp_path / "as2_certs.p12"
    capsys.readouterr()
    code = sync.main([
        "--config", str(config), "--keystore", str(keystore),
        "--storepass-file", str(tmp_path / "storepass"), "--partnerships", str(partnerships),
        "--keys", str(keys), "--dry-run",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    commands = [shlex.split(line) for line in printed if line.startswith("keytool ")]
    by_alias = {
        c[c.index("-alias") + 1] if "-alias" in c else c[c.index("-destalias") + 1]: c
        for c in commands
    }
    assert set(by_alias) == {world["ours_alias"], world["old_alias"], world["new_alias"]}
    assert by_alias[world["new_alias"]][1:3] == ["-importcert", "-noprompt"]
    assert by_alias[world["ours_alias"]][1] == "-importkeystore"
    assert f"would: Them: x509_alias partnera -> {world['old_alias']}" in printed
    assert f"would: Them: x509_alias_fallback None -> {world['new_alias']}" in printed
    assert not keystore.exists()
    assert partnerships.read_text() == PARTNERSHIPS


@pytest.mark.slow  # six keytool runs, each starting a JVM (about 5 s apiece here)
@pytest.mark.skipif(shutil.which("keytool") is None, reason="keytool (a JDK) is not installed")
def test_openas2_sync_fills_the_keystore_and_partnerships_with_keytool(
    live: Live, world: dict[str, Any], tmp_path: Path
) -> None:
    sync = example("openas2_sync")
    config = openas2_state(live, tmp_path, world["at"] - timedelta(minutes=5))
    keystore, storepass = tmp_path / "as2_certs.p12", tmp_path / "storepass"
    storepass.write_text("keystore password\n")
    (tmp_path / "keypass").write_text(PASSPHRASE)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{world['ours_alias']}.p12").write_bytes(world["our_p12"])
    partnerships = tmp_path / "partnerships.xml"
    partnerships.write_text(PARTNERSHIPS)
    arguments = [
        "--config", str(config), "--keystore", str(keystore), "--storepass-file", str(storepass),
        "--partnerships", str(partnerships), "--keys", str(keys),
        "--keys-passphrase-file", str(tmp_path / "keypass"),
    ]  # fmt: skip

    assert sync.main([*arguments, "--dry-run"]) == 0
    assert not keystore.exists()
    assert partnerships.read_text() == PARTNERSHIPS

    assert sync.main(arguments) == 0
    listing = subprocess.run(  # noqa: S603
        ["keytool", "-list", "-keystore", str(keystore), "-storetype", "PKCS12",  # noqa: S607
         "-storepass:file", str(storepass)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    entries = {line.split(",")[0]: line.rstrip().rsplit(",", 2)[-2].strip()
               for line in listing.splitlines() if line.rstrip().endswith("Entry,")}  # fmt: skip
    assert entries == {
        world["ours_alias"]: "PrivateKeyEntry",
        world["old_alias"]: "trustedCertEntry",
        world["new_alias"]: "trustedCertEntry",
    }
    # The key came through: the keystore's entry opens with the keystore password.
    store = pkcs12.load_pkcs12(keystore.read_bytes(), b"keystore password")
    assert store.key is not None
    text = partnerships.read_text()
    assert "<!-- our side -->" in text
    assert f'x509_alias="{world["old_alias"]}" x509_alias_fallback="{world["new_alias"]}"' in text
    assert f'as2_id="OURAS2" x509_alias="{world["ours_alias"]}"' in text
    assert 'x509_alias="other"' in text  # not in the portal: left alone

    stamp = keystore.stat().st_mtime_ns, partnerships.stat().st_mtime_ns
    assert sync.main(arguments) == 0  # nothing changed: nothing rewritten (OpenAS2 polls mtime)
    assert (keystore.stat().st_mtime_ns, partnerships.stat().st_mtime_ns) == stamp


# --- pyas2lib, end to end --------------------------------------------------------------------

PYAS2LIB_MISSING = load_pyas2lib()

# Where the partner switches, in seconds from T: anywhere within a minute, surely early
# (the case an engine trusting only active + previous loses), surely late.
SWITCHES = {"anywhere": (-60.0, 60.0), "early": (-60.0, -10.0), "late": (10.0, 60.0)}


@pytest.mark.skipif(PYAS2LIB_MISSING is not None, reason=str(PYAS2LIB_MISSING))
@pytest.mark.parametrize(
    "switch",
    [
        pytest.param("early"),
        pytest.param("anywhere", marks=pytest.mark.slow),
        pytest.param("late", marks=pytest.mark.slow),
    ],
)
def test_pyas2lib_accepts_every_message_of_a_partner_switching_near_t(
    live: Live, world: dict[str, Any], tmp_path: Path, switch: str
) -> None:
    """40 signed and encrypted messages from T-100 s to T+95 s; the partner signs with its
    new key from a random moment near T. The example's engine reads /api/v1/config at each
    message's moment and tries every `accept` certificate: it must take all 40. An engine
    trusting only `active` + `previous` is run beside it and must lose exactly the messages
    signed with the new key before T (so this test can fail)."""
    from pyas2lib import Message, Organization, Partner

    callbacks = example("pyas2lib_callbacks")
    poll = example("poll_config")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{world['ours_alias']}.p12").write_bytes(world["our_p12"])

    def engine(**options: Any) -> Any:
        return callbacks.PortalAS2(
            poll.ConfigClient(live.url, lambda: world["token"]),
            callbacks.DirectoryKeys(keys, PASSPHRASE),
            partner_settings={"PARTNERAS2": {"sign": True, "encrypt": True}},
            **options,
        )

    ours = engine()
    naive = engine(inbound=lambda s: [c for c in (s["active"], s["previous"]) if c])

    def partner_p12(cert: Any, key: Any) -> bytes:
        return certs.export_pkcs12(
            private_key=key,
            certificate_der=certfactory.der(cert),
            chain_ders=[],
            passphrase=b"partner secret",
            friendly_name=b"partner",
        )

    senders = [  # the partner's old key, then its new one
        Organization("PARTNERAS2", sign_key=partner_p12(*made), sign_key_pass="partner secret")
        for made in world["partner_keys"]
    ]
    to_us = Partner(
        as2_name="OURAS2", sign=True, encrypt=True, enc_alg="aes_256_cbc",
        encrypt_cert=world["ours_pem"].encode(),
    )  # fmt: skip

    at = world["at"]
    seed = random.randrange(2**32)
    offset = random.Random(seed).uniform(*SWITCHES[switch])
    switch_at = at + timedelta(seconds=offset)
    note = f"partner switched at T{offset:+.1f}s (seed {seed})"
    failures: dict[str, list[str]] = {"ours": [], "naive": []}
    early = 0
    for moment in (at + timedelta(seconds=-100 + 5 * i) for i in range(40)):
        switched = moment >= switch_at
        early += switched and moment < at
        payload = f"EDI sent at {moment.isoformat()}".encode()
        message = Message(sender=senders[switched], receiver=to_us)
        message.build(payload)
        raw = message.headers_str + b"\r\n" + message.content
        for name, side in (("ours", ours), ("naive", naive)):
            received = side.receive(raw, at=iso_z(moment))
            if received.exception is not None or received.status != "processed":
                failures[name].append(f"{moment:%H:%M:%S} {received.exception}")
            else:
                assert received.message.content == payload, note

    assert failures["ours"] == [], note
    assert len(failures["naive"]) == early, note  # exactly the early ones, no others
    if switch == "early":
        assert early > 0, note  # a naive engine loses messages: the test can fail
    if switch == "late":
        assert failures["naive"] == [], note  # late switchers are `previous`: both accept
