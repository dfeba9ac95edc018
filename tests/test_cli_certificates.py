"""`portal identity generate|import`, `portal cert inspect`, `portal keys rotate`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import create_app
from portal.domain import certs
from portal.domain.certs import colon_fingerprint
from portal.domain.keys import KeyRing
from portal.extensions import db, keyring
from portal.models import Certificate, Identity, PendingKey
from portal.services import certificates
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import test_settings


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_generate_creates_the_identity_and_prints_the_fingerprint_last(runner, session) -> None:
    result = runner.invoke(
        args=["identity", "generate", "--as2-id", "NEWAS2", "--name", "New Station",
              "--key-size", "2048", "--days", "90", "--usage", "encryption"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created identity New Station (NEWAS2, production)." in result.output
    fingerprint = result.output.strip().splitlines()[-1]
    certificate = session.scalars(select(Certificate)).one()
    assert fingerprint == colon_fingerprint(certificate.sha256)
    assert certificate.usage == "encryption"
    assert certificate.key_size == 2048
    assert (certificate.not_after - certificate.not_before).days in (90, 91)
    again = runner.invoke(args=["identity", "generate", "--as2-id", "NEWAS2", "--key-size", "2048"])
    assert again.exit_code == 0
    assert "Created identity" not in again.output
    assert len(session.scalars(select(Identity)).all()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["identity", "generate"],
        ["identity", "generate", "--as2-id", "X", "--key-size", "1024"],
        ["identity", "generate", "--as2-id", "X", "--days", "0"],
        ["identity", "generate", "--as2-id", "X", "--usage", "decoration"],
        ["identity", "import", "--as2-id", "X"],
        ["cert", "inspect"],
        ["cert", "inspect", "/no/such/file.pem"],
        ["cert", "inspect", "--usage", "bogus", "/dev/null"],
        ["keys", "rotate", "extra"],
    ],
)
def test_misuse_exits_2(runner, args: list[str]) -> None:
    assert runner.invoke(args=args).exit_code == 2


def test_generate_refuses_a_bad_as2_id(runner) -> None:
    result = runner.invoke(args=["identity", "generate", "--as2-id", "BAD ID"])
    assert result.exit_code == 1
    assert "without spaces" in result.output


def test_import_pem_pair_and_pkcs12(runner, session, tmp_path: Path) -> None:
    factories.identity(session, as2_id="IMPAS2")
    cert, key = certfactory.make_cert(now=utcnow())
    result = runner.invoke(
        args=["identity", "import", "--as2-id", "IMPAS2",
              "--cert", write(tmp_path, "c.pem", certfactory.pem(cert)),
              "--key", write(tmp_path, "k.pem", certfactory.key_bytes(key, password=b"kp")),
              "--key-pass-stdin", "--usage", "signing"],
        input="kp\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip().splitlines()[-1]
        == certs.certificate_info(certfactory.der(cert)).fingerprint_sha256
    )
    other, other_key = certfactory.make_cert(now=utcnow(), key=certfactory.rsa_key(2048, slot=2))
    p12 = certs.export_pkcs12(
        private_key=other_key,
        certificate_der=certfactory.der(other),
        chain_ders=[],
        passphrase=b"p12 pass",
        friendly_name=b"x",
    )
    p12_path = write(tmp_path, "id.p12", p12)
    wrong = runner.invoke(
        args=["identity", "import", "--as2-id", "IMPAS2", "--p12", p12_path, "--pass-stdin"],
        input="wrong\n",
    )
    assert wrong.exit_code == 1
    assert len(wrong.output.strip().splitlines()) == 1
    right = runner.invoke(
        args=["identity", "import", "--as2-id", "IMPAS2", "--p12", p12_path, "--pass-stdin"],
        input="p12 pass\n",
    )
    assert right.exit_code == 0, right.output
    assert len(session.scalars(select(Certificate)).all()) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--cert", "c.pem"],  # key missing
        ["--cert", "c.pem", "--key", "c.pem", "--p12", "c.pem"],  # both kinds
        ["--p12", "c.pem", "--key-pass-stdin"],
    ],
)
def test_import_option_misuse_exits_2(runner, tmp_path: Path, args: list[str]) -> None:
    write(tmp_path, "c.pem", b"x")
    full = [a if not a.endswith(".pem") else str(tmp_path / a) for a in args]
    result = runner.invoke(args=["identity", "import", "--as2-id", "X", *full])
    assert result.exit_code == 2


def test_import_key_of_another_certificate_is_refused(runner, session, tmp_path: Path) -> None:
    factories.identity(session, as2_id="IMPAS2")
    session.commit()
    cert, _ = certfactory.make_cert(now=utcnow())
    result = runner.invoke(
        args=["identity", "import", "--as2-id", "IMPAS2",
              "--cert", write(tmp_path, "c.pem", certfactory.pem(cert)),
              "--key", write(tmp_path, "k.pem",
                             certfactory.key_bytes(certfactory.rsa_key(2048, slot=3)))]
    )  # fmt: skip
    assert result.exit_code == 1
    assert session.scalar(select(Certificate)) is None


def test_inspect_exit_codes_and_json(runner, tmp_path: Path) -> None:
    now = utcnow()
    good, key = certfactory.make_cert(now=now, days=400, key_size=3072)
    expired, _ = certfactory.make_cert(
        now=now, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    ok = runner.invoke(args=["cert", "inspect", write(tmp_path, "g.pem", certfactory.pem(good))])
    assert ok.exit_code == 0, ok.output
    assert "fingerprint_sha256" in ok.output
    as_json = runner.invoke(
        args=["cert", "inspect", "--json", write(tmp_path, "g.cer", certfactory.der(good))]
    )
    document = json.loads(as_json.output)
    assert document["acceptable"] is True
    assert (
        document["certificate"]["fingerprint_sha256"]
        == certs.certificate_info(certfactory.der(good)).fingerprint_sha256
    )
    rejected = runner.invoke(
        args=["cert", "inspect", "--json", write(tmp_path, "e.pem", certfactory.pem(expired))]
    )
    assert rejected.exit_code == 1
    assert "expired" in [f["code"] for f in json.loads(rejected.output)["findings"]]
    leaked = runner.invoke(
        args=["cert", "inspect", write(tmp_path, "k.pem", certfactory.key_bytes(key))]
    )
    assert leaked.exit_code == 1
    assert "private_key" in leaked.output
    garbage = runner.invoke(args=["cert", "inspect", write(tmp_path, "r.bin", b"\x00garbage")])
    assert garbage.exit_code == 2
    huge = runner.invoke(args=["cert", "inspect", write(tmp_path, "h.bin", b"A" * 10_000_000)])
    assert huge.exit_code == 2
    assert "too_large" in huge.output


def test_inspect_usage_decides_key_usage(runner, tmp_path: Path) -> None:
    signing_only, _ = certfactory.make_cert(now=utcnow(), usage_flags=certfactory.SIGNING_KU)
    path = write(tmp_path, "s.pem", certfactory.pem(signing_only))
    assert runner.invoke(args=["cert", "inspect", "--usage", "signing", path]).exit_code == 0
    result = runner.invoke(args=["cert", "inspect", "--usage", "encryption", path])
    assert result.exit_code == 1
    assert "key_usage_incompatible" in result.output


def test_keys_rotate_reencrypts_under_the_newest_key(
    tmp_path: Path, database_url: str, connection
) -> None:
    old_key, new_key = factories.new_kek(), factories.new_kek()
    first = create_app(test_settings(tmp_path, database_url, KEY_ENCRYPTION_KEYS=[old_key]))
    db.bind_to(first, connection, join_transaction_mode="create_savepoint")
    with first.app_context():
        identity = factories.identity(db.session, as2_id="ROTATE")
        stored = factories.identity_certificate(db.session, keyring(), identity)
        certificates.create_csr(
            db.session, Actor("tests"), keyring(), identity, usage="both", key_size=2048
        )
        db.session.commit()
        stored_id = stored.id
    second = create_app(
        test_settings(tmp_path, database_url, KEY_ENCRYPTION_KEYS=[old_key, new_key])
    )
    db.bind_to(second, connection, join_transaction_mode="create_savepoint")
    result = second.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 of 2 stored private keys" in result.output
    only_new = KeyRing.from_strings([new_key])
    with second.app_context():
        certificate = db.session.get(Certificate, stored_id)
        only_new.decrypt(
            certificate.encrypted_private_key,
            associated_data=certificates.certificate_aad(certificate.sha256),
        )
        assert not keyring().needs_rotation(
            db.session.scalar(select(PendingKey)).encrypted_private_key
        )
    again = second.test_cli_runner().invoke(args=["keys", "rotate"])
    assert "Re-encrypted 0 of 2" in again.output


def test_console_inspect_as_typed(tmp_path: Path) -> None:
    """The real `portal cert inspect` process, exit code and JSON on stdout."""
    import os
    import subprocess
    import sys

    good, _ = certfactory.make_cert(now=utcnow(), days=400)
    path = write(tmp_path, "g.pem", certfactory.pem(good))
    script = Path(sys.executable).parent / "portal"
    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path / "instance")}
    done = subprocess.run(  # noqa: S603  (our own script, fixed arguments)
        [str(script), "cert", "inspect", "--json", path],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["acceptable"] is True


def test_generation_reads_as_a_sentence_without_internal_values(runner, session) -> None:
    factories.identity(session, as2_id="WORDS")
    session.commit()

    result = runner.invoke(args=["identity", "generate", "--as2-id", "WORDS", "--key-size", "2048"])

    assert result.exit_code == 0, result.output
    assert "Generated a 2048-bit signing and encryption certificate for WORDS" in result.output
    assert "both" not in result.output
