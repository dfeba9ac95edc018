"""The whole bench: seed, serve, measure at 100 partners, grow to N, measure again, report."""

from __future__ import annotations

import importlib.util
import math
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portal.bench import drive, report, work
from portal.bench.certs import CertMaker, make_keys
from portal.bench.clients import Client
from portal.bench.seed import Seeded, Seeder
from portal.bench.serve import Server, start_server
from portal.bench.target import Target, open_target
from portal.domain.keys import KeyRing, generate_key
from portal.domain.scopes import Scope
from portal.domain.tokens import LinkSigner
from portal.models import AuditEvent, Certificate, User
from portal.services import api_tokens
from portal.services.actor import Actor
from portal.timeutil import utcnow

SMALL = 100  # partners of the first measurement
RUN_DUE_EFFECTS = 10_000
PARTNER_PAGE_TOKENS = 200
PAGE_SIZE = 25  # PORTAL_PAGE_SIZE's default, which the served portal uses


@dataclass(frozen=True)
class Options:
    """What `portal bench` was asked for."""

    partners: int = 10_000
    requests: int = 40  # per staff page and for uploads
    partner_requests: int = 200
    database_url: str | None = None
    keep: bool = False


@dataclass
class Kept:
    """What --keep leaves behind for inspection (the password only goes to the terminal)."""

    folder: Path
    database_url: str
    admin_email: str
    admin_password: str


def run(options: Options, progress: Callable[[str], None]) -> tuple[dict[str, Any], Kept | None]:
    """Run every measurement; returns the JSON document (and what was kept, with --keep)."""
    if importlib.util.find_spec("aiosmtpd") is None:
        raise RuntimeError(work.MISSING_AIOSMTPD)
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    target: Target | None = None
    engine: Engine | None = None
    try:
        progress("preparing the throwaway database")
        target = open_target(options.database_url, folder)
        engine = target.engine()
        bench = _Bench(options, target, engine, folder, progress)
        doc, seeded = bench.measure()
        kept = Kept(folder, target.url, seeded.admin_email, seeded.admin_password)
        return doc, (kept if options.keep else None)
    finally:
        if engine is not None:
            engine.dispose()
        if not options.keep:
            if target is not None:
                target.drop()
            shutil.rmtree(folder, ignore_errors=True)


class _Bench:
    def __init__(
        self,
        options: Options,
        target: Target,
        engine: Engine,
        folder: Path,
        progress: Callable[[str], None],
    ) -> None:
        self.options, self.target, self.engine = options, target, engine
        self.folder, self.progress = folder, progress
        self.kek, self.link_key = generate_key(), secrets.token_urlsafe(48)
        self.keyring = KeyRing.from_strings([self.kek])
        self.signer = LinkSigner([self.link_key])
        self.server: Server | None = None
        self.seeder = Seeder(engine, self.keyring, CertMaker(make_keys()), progress, utcnow())

    def env(self) -> dict[str, str]:
        """The served portal's settings: the throwaway database, instance folder and secrets."""
        return {
            "PORTAL_DATABASE_URL": self.target.url,
            "PORTAL_INSTANCE_PATH": str(self.folder / "instance"),
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
            "PORTAL_KEY_ENCRYPTION_KEYS": self.kek,
            "PORTAL_LINK_SIGNING_KEYS": self.link_key,
        }

    def measure(self) -> tuple[dict[str, Any], Seeded]:
        """Everything, in order; the server is always stopped."""
        options = self.options
        seeded = self.seeder.start()
        small = min(SMALL, options.partners)
        self.seeder.grow(small)
        api_secret = self._api_token(seeded)
        self.progress("starting gunicorn (2 workers x 4 threads)")
        server = self.server = start_server(self.env(), self.folder)
        try:
            staff = [Client(server.port) for _ in range(drive.CLIENTS)]
            staff[0].sign_in(seeded.admin_email, seeded.admin_password)
            for client in staff[1:]:
                client.cookies = dict(staff[0].cookies)
            pages_small = self._pages(staff, seeded, api_secret)
            self.seeder.grow(options.partners)
            pages_large = self._pages(staff, seeded, api_secret)
            partners = [Client(server.port) for _ in range(drive.CLIENTS)]
            self.progress(f"measuring the partner page ({options.partner_requests} requests)")
            tokens = [self.signer.sign(i) for i in seeded.link_ids[:PARTNER_PAGE_TOKENS]]
            partner_page = drive.partner_page(partners, tokens, options.partner_requests)
            server.sample_rss()
            upload = self._uploads(partners, seeded)
            server.sample_rss()
            rss = list(server.peaks.values())
            for client in staff + partners:
                client.close()
        finally:
            server.stop()
        doc = self._document(seeded, partner_page, pages_small, pages_large, upload, rss, small)
        doc["worker_timeouts"] = server.worker_timeouts()
        doc.update(self._background(seeded, server.base))
        return doc, seeded

    def _api_token(self, seeded: Seeded) -> str:
        with Session(self.engine) as session:
            actor = Actor.for_user(session.get_one(User, seeded.admin_id))
            made = api_tokens.create(
                session, actor, "bench-config", [Scope.CONFIG_READ.value], now=utcnow()
            )
            session.commit()
            return made.secret

    def _pages(
        self, clients: list[Client], seeded: Seeded, api_secret: str
    ) -> dict[str, drive.Timings]:
        with self.engine.connect() as connection:
            events = int(connection.scalar(select(func.count()).select_from(AuditEvent)) or 0)
        n = seeded.partners
        bearer = {"Authorization": f"Bearer {api_secret}"}
        etag = clients[0].get("/api/v1/config", bearer).headers.get("etag", "")
        pages = {
            "dashboard": drive.Page("/"),
            "approval_queue": drive.Page("/submissions"),
            "partners": drive.Page("/partners"),
            "partners_deep": drive.Page(f"/partners?page={max(1, math.ceil(n / PAGE_SIZE))}"),
            "partner_search": drive.Page(f"/partners?q=BENCHP{min(42, n - 1):06d}"),
            "audit": drive.Page("/audit"),
            "audit_deep": drive.Page(f"/audit?page={max(1, math.ceil(events / PAGE_SIZE))}"),
            "identity": drive.Page(f"/identities/{seeded.identity_ids[0]}"),
            "api_config": drive.Page("/api/v1/config", bearer),
            "api_config_etag": drive.Page(
                "/api/v1/config", {**bearer, "If-None-Match": etag}, (304,)
            ),
        }
        timings = {}
        for name, page in pages.items():
            self.progress(f"measuring {name} at {n} partners ({self.options.requests} requests)")
            timings[name] = drive.time_page(clients, page, self.options.requests)
            if self.server is not None:
                self.server.sample_rss()
        return timings

    def _uploads(self, clients: list[Client], seeded: Seeded) -> drive.Timings:
        count = self.options.requests
        self.progress(f"measuring upload-and-validate ({count} uploads)")
        now = utcnow()
        # Links past those the partner page opens, one upload each while there are enough.
        links = seeded.link_ids[PARTNER_PAGE_TOKENS:] or seeded.link_ids
        tokens = [self.signer.sign(links[n % len(links)]) for n in range(count)]
        pems = [self.seeder.maker.upload_pem(f"BENCHUP{n:06d}", now) for n in range(count)]
        return drive.uploads(clients, tokens, pems)

    def _background(self, seeded: Seeded, base_url: str) -> dict[str, Any]:
        now = utcnow()
        with self.engine.begin() as connection:
            certificate_id = self.seeder.identity_certificate(
                connection,
                seeded.identity_ids[0],
                admin_id=seeded.admin_id,
                not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=730),
                activate_at=None,
            )
            sha256 = str(
                connection.scalar(
                    select(Certificate.sha256).where(Certificate.id == certificate_id)
                )
            )
        self.progress("measuring a campaign start")
        campaign = work.start_campaign(self.engine, seeded.identity_ids[0], sha256, seeded.admin_id)
        with work.smtp_server() as (port, counter):
            settings = work.runner_settings(base_url, port)
            self.progress(f"delivering the campaign's emails to SMTP on 127.0.0.1:{port}")
            delivery = work.run_due(self.engine, settings, self.keyring, self.signer)
            campaign["emails_sent"], campaign["emails_received"] = (
                delivery["sent"],
                counter.messages,
            )
            self.progress(f"adding {RUN_DUE_EFFECTS} due side effects")
            work.add_due_effects(self.engine, RUN_DUE_EFFECTS, seeded.admin_id)
            self.progress(f"measuring run-due over {RUN_DUE_EFFECTS} side effects")
            due = work.run_due(self.engine, settings, self.keyring, self.signer)
        return {
            "campaign_5000_s": round(campaign["seconds"], 3),
            "campaign_delivery_s": round(delivery["seconds"], 3),
            "run_due_10000_s": round(due["seconds"], 3),
            "campaign": campaign,
            "run_due": {**due, "effects": RUN_DUE_EFFECTS},
        }

    def _document(
        self,
        seeded: Seeded,
        partner_page: dict[str, Any],
        small: dict[str, drive.Timings],
        large: dict[str, drive.Timings],
        upload: drive.Timings,
        rss: list[float],
        small_n: int,
    ) -> dict[str, Any]:
        pages = {}
        errors = partner_page["errors"] + upload.errors
        for name, timings in large.items():
            before, after = small[name].p_ms(95), timings.p_ms(95)
            pages[name] = {
                "p95_ms_small": before,
                "p95_ms_large": after,
                "ratio": round(after / before, 2) if before else 0.0,
                "p50_ms_small": small[name].p_ms(50),
                "p50_ms_large": timings.p_ms(50),
                "errors": small[name].errors + timings.errors,
                "unexpected_small": small[name].unexpected,
                "unexpected_large": timings.unexpected,
            }
            errors += pages[name]["errors"]
        return {
            "machine": report.machine(),
            "partners": seeded.partners,
            "small_partners": small_n,
            "database": self.target.kind,
            "timestamp": utcnow().isoformat(timespec="seconds"),
            "versions": report.versions(),
            "partner_page": partner_page,
            "pages": pages,
            "upload_p95_ms": upload.p_ms(95),
            "upload_p50_ms": upload.p_ms(50),
            "upload_errors": upload.errors,
            "upload_unexpected": upload.unexpected,
            "worker_rss_mb": round(max(rss), 1) if rss else 0.0,
            "worker_rss_mb_each": [round(r, 1) for r in rss],
            "seeded": seeded.counts,
            "errors": errors,
        }
