"""`portal export --dir` and the runner's export directory: the layout follows the config
document at its boundaries, the switch is one rename, nothing is rewritten when nothing
changed, keys only with a passphrase, unsafe AS2 IDs and foreign folders refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import create_app, exporter
from portal.config import ConfigError
from portal.domain.aliases import certificate_alias
from portal.extensions import keyring
from portal.models import AuditEvent, Certificate, User
from portal.services import approvals, config_export, export_dir
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure
from tests.schedulehelpers import OVERLAP, iso_z, schedule_ours

PASSPHRASE = "export passphrase 2030"


@pytest.fixture
def rotation(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """Our signing certificate OLD is active and NEW starts at T; a partner's with a chain."""
    proposer, approver = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity, usage="signing")
    new = factories.identity_certificate(session, keyring(), identity, usage="signing")
    now = utcnow()
    schedule_ours(session, old, now, proposer=proposer, approver=approver, now=now)
    at = (now + timedelta(days=2)).replace(microsecond=0)
    schedule_ours(session, new, at, proposer=proposer, approver=approver, now=now)
    partner = factories.partner(session, identity)
    link = factories.share_link(session, partner, can_download=False, max_uploads=1)
    submission = factories.submission(session, link)
    theirs = approvals.approve_submission(
        session, Actor.for_user(approver), submission, activate_at=now, now=now
    )
    ca, _ = certfactory.make_ca(now=now)
    theirs.chain_pem = certfactory.pem(ca).decode()
    session.flush()
    return {
        "identity": identity,
        "partner": partner,
        "old": old,
        "new": new,
        "theirs": theirs,
        "ca": ca,
        "at": at,
        "approver": approver,
    }


def export(runner: Any, directory: Path, at: datetime | None = None, *more: str) -> Any:
    args = ["export", "--dir", str(directory)]
    if at is not None:
        args += ["--at", iso_z(at)]
    return runner.invoke(args=[*args, *more])


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under DIRECTORY (followed through its link) by relative path."""
    root = directory.resolve()
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def siblings(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.parent.iterdir())


def alias(certificate: Certificate, owner: str) -> str:
    return certificate_alias(owner, certificate.sha256)


def pem_of(certificate: Certificate) -> bytes:
    return x509.load_der_x509_certificate(certificate.der).public_bytes(Encoding.PEM)


def test_layout_follows_the_document_at_the_boundaries(session, runner, rotation, tmp_path):
    identity, partner, old, new = (rotation[k] for k in ("identity", "partner", "old", "new"))
    theirs, at = rotation["theirs"], rotation["at"]
    directory = tmp_path / "engine"
    mine = f"identities/{identity.as2_id}/signing"
    accept_old, accept_new = (
        f"{mine}/accept-{alias(old, identity.as2_id)}",
        (f"{mine}/accept-{alias(new, identity.as2_id)}"),
    )
    expected_send = {
        at - timedelta(seconds=1): (old, {accept_old, accept_new}),
        at: (new, {accept_old, accept_new}),
        at + OVERLAP: (new, {accept_new}),
    }
    for moment, (send, accepts) in expected_send.items():
        result = export(runner, directory, moment)
        assert result.exit_code == 0, result.output
        assert "wrote version" in result.output
        files = tree(directory)
        document = config_export.build(session, at=moment, overlap=OVERLAP)
        assert json.loads(files["manifest.json"]) == document.body
        assert files["manifest.json"] == document.to_json() + b"\n"
        assert files["version"].decode().strip() == document.version
        assert files[f"{mine}/send.pem"] == pem_of(send)
        assert files[f"{mine}/send.cer"] == send.der
        ours = {name.rsplit(".", 1)[0] for name in files if name.startswith(f"{mine}/accept-")}
        assert ours == accepts
        # A signing-only certificate serves no encryption; the partner's serves both.
        assert not any(
            name.startswith(f"identities/{identity.as2_id}/encryption/") for name in files
        )
        for usage in ("signing", "encryption"):
            folder = f"partners/{partner.as2_id}/{usage}"
            assert files[f"{folder}/send.cer"] == theirs.der
            assert f"{folder}/accept-{alias(theirs, partner.as2_id)}.pem" in files
        assert not any(name.endswith(".p12") for name in files)
    # Each export replaced the one before; the newest previous one stays for its readers.
    versioned = [n for n in siblings(directory) if n.startswith(".engine-")]
    assert len(versioned) == 2
    assert os.readlink(directory) in versioned


def test_pem_holds_the_chain_and_cer_the_leaf_alone(session, runner, rotation, tmp_path) -> None:
    partner, theirs, ca = rotation["partner"], rotation["theirs"], rotation["ca"]
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    files = tree(directory)
    stem = f"partners/{partner.as2_id}/signing/send"
    bundle = x509.load_pem_x509_certificates(files[f"{stem}.pem"])
    assert [c.public_bytes(Encoding.DER) for c in bundle] == [theirs.der, certfactory.der(ca)]
    assert x509.load_der_x509_certificate(files[f"{stem}.cer"]).public_bytes(Encoding.DER) == (
        theirs.der
    )


def test_modes_of_files_and_folders(runner, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    root = directory.resolve()
    assert root.stat().st_mode & 0o777 == 0o750
    for path in root.rglob("*"):
        expected = 0o750 if path.is_dir() else 0o644
        assert path.stat().st_mode & 0o777 == expected, path


def test_a_second_export_is_unchanged_and_rewrites_nothing(runner, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    at = rotation["at"]
    assert export(runner, directory, at).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in directory.resolve().rglob("*")}
    link_before = os.lstat(directory)
    names_before = siblings(directory)

    again = export(runner, directory, at + timedelta(hours=1))  # no boundary in between
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in directory.resolve().rglob("*")} == before
    assert os.lstat(directory).st_mtime_ns == link_before.st_mtime_ns
    assert os.lstat(directory).st_ino == link_before.st_ino
    assert siblings(directory) == names_before


def test_a_data_change_is_written_without_a_boundary(session, runner, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    at = rotation["at"]
    assert export(runner, directory, at).exit_code == 0
    partner = factories.partner(session, rotation["identity"])
    session.flush()
    result = export(runner, directory, at)
    assert "wrote version" in result.output
    assert json.loads(tree(directory)["manifest.json"])["partners"][-1]["as2_id"] == (
        partner.as2_id
    )


def test_the_test_environment_lives_under_test(session, runner, rotation, tmp_path) -> None:
    identity = rotation["identity"]
    twin = factories.identity(session, as2_id=identity.as2_id, environment="test")
    certificate = factories.identity_certificate(session, keyring(), twin, usage="encryption")
    now = utcnow()
    schedule_ours(
        session,
        certificate,
        now,
        proposer=factories.user(session, role="operator", password="a long test password"),
        approver=rotation["approver"],
        now=now,
    )
    session.flush()
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    files = tree(directory)
    assert files[f"test/identities/{identity.as2_id}/encryption/send.cer"] == certificate.der
    assert f"identities/{identity.as2_id}/signing/send.cer" in files
    assert f"identities/{identity.as2_id}/encryption/send.cer" not in files


@pytest.mark.parametrize(
    ("as2_id", "name"),
    [
        ("ACME-EDI_01", "ACME-EDI_01"),
        ("edi@acme.example", "edi@acme.example"),
        ("../../etc", "%2E.%2F..%2Fetc"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("a/b", "a%2Fb"),
        ("a%2Fb", "a%252Fb"),
        ("nul\x00ctl\x1f", "nul%00ctl%1F"),
        ("Zürich", "Z%C3%BCrich"),
        ("", "%00"),
    ],
)
def test_as2_ids_become_safe_readable_names(as2_id: str, name: str) -> None:
    assert export_dir.safe_name(as2_id) == name


def test_safe_names_never_collide_and_stay_short() -> None:
    ids = ["a/b", "a%2Fb", "a_2Fb", ".a", "%2Ea", "..", "%2E.", "x" * 128, "/" * 128, "/" * 127]
    names = [export_dir.safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert "/" not in name
        assert not name.startswith(".")
        assert all(0x21 <= ord(c) <= 0x7E for c in name)
        assert len(name.encode()) < 200


def test_unsafe_as2_ids_stay_inside_the_export(session, runner, make_user, tmp_path) -> None:
    identity = factories.identity(session, as2_id="../../outside")
    certificate = factories.identity_certificate(session, keyring(), identity)
    now = utcnow()
    schedule_ours(
        session,
        certificate,
        now,
        proposer=make_user("operator"),
        approver=make_user("approver"),
        now=now,
    )
    session.flush()
    base = tmp_path / "exports"
    directory = base / "deep" / "engine"
    directory.parent.mkdir(parents=True)
    assert export(runner, directory).exit_code == 0, "export failed"
    assert "identities/%2E.%2F..%2Foutside/signing/send.cer" in tree(directory)
    assert sorted(p.name for p in base.iterdir()) == ["deep"]
    assert all(p.is_relative_to(directory.resolve()) for p in directory.resolve().rglob("*"))


def test_ids_differing_only_in_case_are_refused(session, runner, tmp_path) -> None:
    factories.identity(session, as2_id="ACME-EU")
    factories.identity(session, as2_id="acme-eu")
    session.flush()
    result = export(runner, tmp_path / "engine")
    assert result.exit_code == 1
    assert "ACME-EU (production) and acme-eu (production) would share" in result.stderr
    assert not (tmp_path / "engine").exists()


def test_a_real_directory_or_a_foreign_link_is_refused_never_deleted(runner, tmp_path) -> None:
    directory = tmp_path / "engine"
    directory.mkdir()
    (directory / "mine.txt").write_text("made by a person")
    result = export(runner, directory)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is not an export this portal wrote" in result.stderr
    assert (directory / "mine.txt").read_text() == "made by a person"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "linked"
    link.symlink_to(elsewhere)
    refused = export(runner, link)
    assert refused.exit_code == 1
    assert "symbolic link" in refused.stderr
    assert os.readlink(link) == str(elsewhere)

    missing = export(runner, tmp_path / "nowhere" / "engine")
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


def test_usage_errors_exit_2(runner, session, tmp_path) -> None:
    assert export(runner, tmp_path / "engine", None, "--at", "tomorrow").exit_code == 2
    assert runner.invoke(args=["export"]).exit_code == 2


# Atomic replace ---------------------------------------------------------------------------


def test_the_old_tree_stays_whole_until_the_one_rename(
    runner, rotation, tmp_path, monkeypatch
) -> None:
    directory = tmp_path / "engine"
    at = rotation["at"]
    assert export(runner, directory, at - timedelta(seconds=1)).exit_code == 0
    old_tree, old_folder = tree(directory), directory.resolve()
    held = (old_folder / "manifest.json").open("rb")  # a reader in the middle of the old one
    seen: list[dict[str, bytes]] = []
    real_switch = exporter._switch

    def switch(path: Path, folder_name: str) -> None:
        seen.append(tree(directory))  # just before the rename: readers still see the old one
        new_tree = tree(path.parent / folder_name)
        assert "manifest.json" in new_tree  # the new one is complete before it is shown
        real_switch(path, folder_name)

    monkeypatch.setattr(exporter, "_switch", switch)
    assert export(runner, directory, at).exit_code == 0
    assert seen == [old_tree]
    assert tree(directory) != old_tree
    # The previous folder stays whole for readers who resolved the link before the switch.
    assert tree(old_folder) == old_tree
    monkeypatch.setattr(exporter, "_switch", real_switch)
    assert export(runner, directory, at + OVERLAP).exit_code == 0
    assert not old_folder.exists()  # two switches later it is gone...
    assert held.read() == old_tree["manifest.json"]  # ...but an open file still reads whole
    held.close()


def test_a_failure_midway_leaves_the_previous_export_and_no_scratch(
    runner, rotation, tmp_path, monkeypatch
) -> None:
    directory = tmp_path / "engine"
    at = rotation["at"]
    assert export(runner, directory, at - timedelta(seconds=1)).exit_code == 0
    before, target, names = tree(directory), os.readlink(directory), siblings(directory)
    written = []
    real_write = exporter._write_file

    def failing_write(target_path: Path, data: bytes, mode: int) -> None:
        if len(written) == 3:
            raise OSError(28, "No space left on device", str(target_path))
        written.append(target_path)
        real_write(target_path, data, mode)

    monkeypatch.setattr(exporter, "_write_file", failing_write)
    result = export(runner, directory, at)
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert len(written) == 3
    assert os.readlink(directory) == target
    assert tree(directory) == before
    assert siblings(directory) == names  # no temporary folder or link left behind

    monkeypatch.setattr(exporter, "_write_file", real_write)
    assert export(runner, directory, at).exit_code == 0


def test_scratch_left_by_a_dead_writer_is_removed(runner, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    stale = tmp_path / ".engine.tmp-0badc0de"
    stale.mkdir()
    (stale / "manifest.json").write_text("{")
    assert export(runner, directory).exit_code == 0
    assert not stale.exists()


def plan_of(session: Session, at: datetime) -> tuple[str, str, list[export_dir.ExportFile]]:
    document = config_export.build(session, at=at, overlap=OVERLAP)
    version = export_dir.export_version(document.version, with_keys=False)
    return document.version, version, export_dir.plan_files(document)


def test_two_writers_at_once_write_once(session, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    document_version, version, files = plan_of(session, rotation["at"])
    barrier = threading.Barrier(2)
    outcomes: list[exporter.Outcome] = []

    def write() -> None:
        barrier.wait()
        outcomes.append(exporter.publish(directory, document_version, version, lambda: files))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.written for o in outcomes) == [False, True]
    assert tree(directory) == {f.path: f.data for f in files}
    assert [n for n in siblings(directory) if n.startswith(".engine-")] == [os.readlink(directory)]


def test_many_writers_of_two_versions_never_corrupt(session, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    at = rotation["at"]
    plans = [plan_of(session, at - timedelta(seconds=1)), plan_of(session, at)]
    trees = [{f.path: f.data for f in plan[2]} for plan in plans]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def write(number: int) -> None:
        document_version, version, files = plans[number % 2]
        barrier.wait()
        try:
            for _ in range(3):
                exporter.publish(directory, document_version, version, lambda: files)
                assert tree(directory) in trees
        except BaseException as error:  # collected for the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert tree(directory) in trees
    leftovers = [n for n in siblings(directory) if n.startswith(".engine.") and n != ".engine.lock"]
    assert leftovers == []
    assert len([n for n in siblings(directory) if n.startswith(".engine-")]) <= 2


# Keys -----------------------------------------------------------------------------------


def test_no_key_material_without_a_passphrase(runner, rotation, tmp_path) -> None:
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    files = tree(directory)
    assert not any(name.endswith(".p12") for name in files)
    assert not any(b"PRIVATE KEY" in data for data in files.values())


def test_keys_with_a_passphrase_are_pkcs12_0600_under_their_alias(
    app, session, runner, rotation, tmp_path, caplog
) -> None:
    identity, old, new = rotation["identity"], rotation["old"], rotation["new"]
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    reconfigure(app, EXPORT_KEY_PASSPHRASE=PASSPHRASE)
    result = export(runner, directory)
    assert result.exit_code == 0, result.output
    assert "wrote version" in result.output  # keys added: the same document, a new export
    root = directory.resolve()
    mine = directory / "identities" / identity.as2_id / "signing"  # through the link
    keystores = {p.relative_to(root).as_posix() for p in root.rglob("*.p12")}
    assert keystores == {
        f"identities/{identity.as2_id}/signing/send.p12",
        f"identities/{identity.as2_id}/signing/accept-{alias(old, identity.as2_id)}.p12",
        f"identities/{identity.as2_id}/signing/accept-{alias(new, identity.as2_id)}.p12",
    }
    for path in root.rglob("*.p12"):
        assert path.stat().st_mode & 0o777 == 0o600
    for name, certificate in [("send", old), (f"accept-{alias(new, identity.as2_id)}", new)]:
        loaded = pkcs12.load_pkcs12((mine / f"{name}.p12").read_bytes(), PASSPHRASE.encode())
        assert loaded.key is not None
        assert loaded.cert is not None
        assert loaded.cert.certificate.public_bytes(Encoding.DER) == certificate.der
        assert loaded.cert.friendly_name == alias(certificate, identity.as2_id).encode()
        public = loaded.key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        assert public == loaded.cert.certificate.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
    with pytest.raises(ValueError, match="Invalid password"):
        pkcs12.load_pkcs12((mine / "send.p12").read_bytes(), b"wrong passphrase")
    (event,) = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "export.keys_written")
    ).all()
    assert event.details["keys"] == 3
    assert PASSPHRASE not in json.dumps(event.details) + event.summary + caplog.text + result.output

    again = export(runner, directory)
    assert "unchanged" in again.output
    reconfigure(app, EXPORT_KEY_PASSPHRASE="another passphrase")
    changed = export(runner, directory)
    assert "wrote version" in changed.output  # keys under the old passphrase are replaced
    loaded = pkcs12.load_pkcs12((mine / "send.p12").read_bytes(), b"another passphrase")
    assert loaded.key is not None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_keystores_use_aes_256(app, runner, rotation, tmp_path) -> None:
    reconfigure(app, EXPORT_KEY_PASSPHRASE=PASSPHRASE)
    directory = tmp_path / "engine"
    assert export(runner, directory).exit_code == 0
    keystore = next(directory.resolve().rglob("send.p12"))
    info = subprocess.run(  # noqa: S603
        ["openssl", "pkcs12", "-info", "-noout", "-in", str(keystore), "-passin", "env:PASS"],  # noqa: S607
        env={**os.environ, "PASS": PASSPHRASE},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "AES-256-CBC" in info.stderr + info.stdout


def test_a_short_passphrase_is_refused_at_start_without_showing_it(tmp_path) -> None:
    with pytest.raises(ConfigError, match="PORTAL_EXPORT_KEY_PASSPHRASE") as refused:
        create_app({"INSTANCE_PATH": str(tmp_path), "EXPORT_KEY_PASSPHRASE": "s3cret"})
    assert "s3cret" not in str(refused.value)
    with pytest.raises(export_dir.ServiceError, match="at least 8"):
        export_dir.check_passphrase("s3cret")
    # The same rule as every key export: common and repetitive passphrases are refused too.
    for weak, reason in (("password", "too common"), ("aaaaaaaaaa", "too repetitive")):
        with pytest.raises(export_dir.ServiceError, match=reason):
            export_dir.check_passphrase(weak)


def test_export_settings_from_the_environment_are_text(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_EXPORT_KEY_PASSPHRASE", "97531864")
    monkeypatch.setenv("PORTAL_EXPORT_DIR", str(tmp_path / "engine"))
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    from portal.settings import SETTINGS_KEY

    configured = app.extensions[SETTINGS_KEY]
    assert configured.export_key_passphrase == "97531864"
    assert configured.export_dir == str(tmp_path / "engine")
    assert "97531864" not in repr(configured)


# The runner --------------------------------------------------------------------------------


def test_the_runner_refreshes_the_export_after_a_boundary(app, runner, clock, rotation, tmp_path):
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    directory = tmp_path / "engine"
    reconfigure(app, EXPORT_DIR=str(directory))
    send = directory / "identities" / identity.as2_id / "signing" / "send.cer"

    clock.set(at - timedelta(seconds=1))
    first = runner.invoke(args=["run-due"])
    assert first.exit_code == 0, first.output
    assert "wrote version" in first.output
    assert send.read_bytes() == old.der

    clock.set(at - timedelta(milliseconds=500))
    quiet = runner.invoke(args=["run-due"])
    assert quiet.exit_code == 0
    assert "unchanged" in quiet.output

    clock.set(at)
    switched = runner.invoke(args=["run-due"])
    assert switched.exit_code == 0, switched.output
    assert "wrote version" in switched.output
    assert send.read_bytes() == new.der

    clock.set(at + OVERLAP)
    runner.invoke(args=["run-due"])
    names = {p.name for p in send.parent.iterdir()}
    assert f"accept-{alias(old, identity.as2_id)}.cer" not in names


def test_a_runner_that_began_earlier_never_puts_the_export_back(
    app, runner, clock, rotation, tmp_path
) -> None:
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    directory = tmp_path / "engine"
    reconfigure(app, EXPORT_DIR=str(directory))
    send = directory / "identities" / identity.as2_id / "signing" / "send.cer"
    clock.set(at)
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert send.read_bytes() == new.der

    clock.set(at - timedelta(seconds=1))  # a second runner whose run began before T
    late = runner.invoke(args=["run-due"])
    assert late.exit_code == 0, late.output
    assert send.read_bytes() == new.der

    # An operator asking for another moment explicitly still gets it.
    asked = runner.invoke(
        args=["export", "--dir", str(directory), "--at", iso_z(at - timedelta(1))]
    )
    assert asked.exit_code == 0, asked.output
    assert send.read_bytes() == old.der


def test_the_scheduler_says_when_it_wrote(app, runner, clock, rotation, tmp_path) -> None:
    reconfigure(app, EXPORT_DIR=str(tmp_path / "engine"))
    clock.set(rotation["at"])
    result = runner.invoke(args=["scheduler", "--interval", "1", "--iterations", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote version" in result.output


def test_an_export_failure_is_reported_and_stops_nothing_else(
    app, session, runner, clock, rotation, tmp_path
) -> None:
    directory = tmp_path / "engine"
    directory.mkdir()
    reconfigure(app, EXPORT_DIR=str(directory))
    clock.set(rotation["at"] + timedelta(seconds=1))
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 1
    assert "Export directory not written:" in result.stderr
    assert "is not an export this portal wrote" in result.stderr
    performed = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "certificate.activation_noticed")
    ).all()
    assert performed  # the side effects were performed all the same
    directory.rmdir()
    retried = runner.invoke(args=["run-due"])
    assert retried.exit_code == 0, retried.output
    assert "wrote version" in retried.output
