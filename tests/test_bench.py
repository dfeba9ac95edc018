"""`portal bench`: its seeding at a tiny size (counts, real certificates, pages that render),
and the whole command end to end (slow). Nothing here asserts on speed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select

from portal import create_app
from portal.bench.certs import CertMaker, make_keys
from portal.bench.seed import Seeded, Seeder
from portal.bench.target import Target, TargetRefusedError, open_target, refuse_if_in_use
from portal.domain.certs import certificate_info
from portal.domain.keys import KeyRing
from portal.domain.tokens import LinkSigner
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Certificate,
    ChangeWindow,
    Identity,
    Partner,
    ShareLink,
    SideEffect,
    Submission,
    User,
)
from portal.services import api_tokens
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import POSTGRES_URL, signed_in_client, test_settings

PARTNERS = 20
LINK_KEY = "k" * 40


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """A throwaway database as the bench makes it (SQLite, or a schema in the test PostgreSQL)."""
    made = open_target(POSTGRES_URL, tmp_path)
    yield made
    made.drop()


@pytest.fixture
def seeded(target: Target) -> Iterator[tuple[Engine, Seeded, str]]:
    """PARTNERS partners seeded in bulk; (engine, what was seeded, the key-encryption key)."""
    kek = factories.new_kek()
    engine = target.engine()
    seeder = Seeder(engine, KeyRing.from_strings([kek]), CertMaker(make_keys()), print, utcnow())
    seeder.start()
    seeder.grow(PARTNERS)
    assert seeder.seeded is not None
    yield engine, seeder.seeded, kek
    engine.dispose()


def _count(engine: Engine, model: type, *where: object) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_seeding_writes_the_history_of_every_partner(seeded: tuple[Engine, Seeded, str]) -> None:
    engine, info, _ = seeded
    assert _count(engine, Partner) == PARTNERS == info.partners
    assert _count(engine, Identity) == 4
    assert _count(engine, ShareLink) == PARTNERS == len(info.link_ids)
    # Two per partner, a third (scheduled) for every tenth; two per identity.
    assert _count(engine, Certificate, Certificate.partner_id.is_not(None)) == 2 * PARTNERS + 2
    assert _count(engine, Certificate, Certificate.identity_id.is_not(None)) == 8
    assert _count(engine, Certificate, Certificate.not_after < utcnow()) == PARTNERS + 4
    assert _count(engine, Certificate, Certificate.activate_at > utcnow()) == 2
    assert _count(engine, Submission) == PARTNERS // 5 + 1
    assert _count(engine, Submission, Submission.status == "received") == 1
    assert _count(engine, ChangeWindow) == PARTNERS // 4
    assert _count(engine, AuditEvent, AuditEvent.object_type == "partner") == 100 * PARTNERS
    # Certificates in force long ago had their activation noticed already.
    activated = _count(engine, Certificate, Certificate.activate_at <= utcnow())
    assert _count(engine, SideEffect, SideEffect.done_at.is_not(None)) == activated
    assert info.counts["audit_events"] == 100 * PARTNERS


def test_seeded_certificates_are_real_and_distinct(seeded: tuple[Engine, Seeded, str]) -> None:
    engine, _, _ = seeded
    with engine.connect() as connection:
        rows = connection.execute(select(Certificate.der, Certificate.sha256)).all()
    assert len({sha256 for _, sha256 in rows}) == len(rows)
    for der, sha256 in rows:
        assert certificate_info(der).fingerprint_sha256.replace(":", "").lower() == sha256


def test_a_database_with_portal_data_is_refused(
    seeded: tuple[Engine, Seeded, str], target: Target
) -> None:
    with pytest.raises(TargetRefusedError, match="holds portal data"):
        refuse_if_in_use(target.url)


@pytest.fixture
def seeded_app(tmp_path: Path, target: Target, seeded: tuple[Engine, Seeded, str]) -> Flask:
    """The portal on the seeded database, with the seed's secrets."""
    _, _, kek = seeded
    return create_app(
        test_settings(tmp_path, target.url, KEY_ENCRYPTION_KEYS=[kek], LINK_SIGNING_KEYS=[LINK_KEY])
    )


STAFF_PAGES = (
    "/",
    "/submissions",
    "/partners",
    "/partners?page=1",
    "/partners?q=BENCHP000007",
    "/audit",
    "/audit?page=80",
)


def test_the_portal_renders_its_pages_on_the_seeded_database(
    seeded_app: Flask, seeded: tuple[Engine, Seeded, str]
) -> None:
    _, info, _ = seeded
    with seeded_app.app_context():
        session = db.session
        admin = session.get_one(User, info.admin_id)
        browser = signed_in_client(seeded_app, session, admin)
        secret = api_tokens.create(
            session, Actor.for_user(admin), "bench-test", ["config:read"], now=utcnow()
        ).secret
        session.commit()
    for path in (*STAFF_PAGES, f"/identities/{info.identity_ids[0]}"):
        answer = browser.get(path)
        assert answer.status_code == 200, path
    assert b"BENCHP000007" in browser.get("/partners?q=BENCHP000007").data
    token = LinkSigner([LINK_KEY]).sign(info.link_ids[3])
    partner_page = seeded_app.test_client().get(f"/s/{token}")
    assert partner_page.status_code == 200
    config = seeded_app.test_client().get(
        "/api/v1/config", headers={"Authorization": f"Bearer {secret}"}
    )
    assert config.status_code == 200
    assert "BENCHP000003" in config.get_data(as_text=True)


NUMERIC_KEYS = ("partners", "upload_p95_ms", "campaign_5000_s", "run_due_10000_s", "worker_rss_mb")
PARTNER_PAGE_KEYS = ("rps", "p50_ms", "p95_ms", "bare_rps", "ratio")
PAGE_KEYS = ("p95_ms_small", "p95_ms_large", "ratio")
PAGES = (
    "dashboard", "approval_queue", "partners", "partners_deep", "partner_search", "audit",
    "audit_deep", "identity", "api_config", "api_config_etag",
)  # fmt: skip


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow
def test_portal_bench_end_to_end_prints_every_figure_as_json(tmp_path: Path) -> None:
    # The console script installed beside this interpreter, as a user runs it.
    portal = str(Path(sys.executable).parent / "portal")
    command = [portal, "bench", "--partners", "30", "--requests", "5", "--json"]
    if POSTGRES_URL:
        command += ["--database-url", POSTGRES_URL]
    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_SECRET_KEY": secrets.token_urlsafe(32)}  # fmt: skip
    env.pop("PORTAL_DATABASE_URL", None)
    done = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "seeding partners 30/30" in done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc["machine"], str)
    assert doc["machine"]
    assert doc["partners"] == 30
    for key in NUMERIC_KEYS:
        assert _number(doc[key]), key
    for key in PARTNER_PAGE_KEYS:
        assert _number(doc["partner_page"][key]), key
    assert set(PAGES) <= set(doc["pages"])
    for name in PAGES:
        for key in PAGE_KEYS:
            assert _number(doc["pages"][name][key]), (name, key)
    assert _number(doc["campaign_delivery_s"])
    assert doc["database"] in ("sqlite", "postgresql")
    assert doc["errors"] == 0
    assert doc["campaign"]["emails_received"] >= doc["campaign"]["partners"]
    assert doc["run_due"]["performed"] == 10_000
    assert "password" not in done.stderr
