"""Background work timed in-process: a campaign start, its emails to a loopback SMTP server
through the runner (portal.jobs.run_once, what `portal run-due` runs), and run-due over
many due side effects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from portal import jobs
from portal.config import DEFAULTS
from portal.domain.keys import KeyRing
from portal.domain.tokens import LinkSigner, new_link_id
from portal.models import Identity, Partner, ShareLink, SideEffect, User
from portal.services import campaigns
from portal.services.actor import Actor
from portal.services.runner import LINK_FULFILLED
from portal.settings import Settings
from portal.timeutil import utcnow

MISSING_AIOSMTPD = (
    "portal bench needs aiosmtpd for its loopback mail server: "
    "pip install 'cert-exchange-portal[bench]'"
)


@dataclass
class Counter:
    """An SMTP handler that accepts and counts every message (aiosmtpd's DATA hook)."""

    messages: int = 0

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:  # noqa: N802
        """Accept the message."""
        self.messages += 1
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, Counter]]:
    """An SMTP server on 127.0.0.1 (a free port) in this process: (port, its counter)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise RuntimeError(MISSING_AIOSMTPD) from None
    from portal.bench.serve import free_port

    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield int(controller.port), counter
    finally:
        controller.stop()


def runner_settings(base_url: str, smtp_port: int | None) -> Settings:
    """Settings as `portal run-due` would read them, mail going to the loopback server."""
    config = {
        **DEFAULTS,
        "CONTACT_EMAIL": DEFAULTS["MAIL_FROM"],
        "BASE_URL": base_url,
        "SMTP_HOST": "127.0.0.1" if smtp_port else None,
        "SMTP_PORT": smtp_port or 25,
    }
    return Settings.from_config(config)


def start_campaign(engine: Engine, identity_id: int, sha256: str, admin_id: int) -> dict[str, Any]:
    """Start a campaign for every partner of IDENTITY_ID (services campaigns.start): seconds."""
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        identity = session.get_one(Identity, identity_id)
        actor = Actor.for_user(session.get_one(User, admin_id), "127.0.0.1", "portal bench")
        wanted = campaigns.StartRequest(
            identity=identity, sha256=sha256, activate_at=now + timedelta(days=30)
        )
        started = time.perf_counter()
        campaign = campaigns.start(session, actor, wanted, now=now)
        session.commit()
        seconds = time.perf_counter() - started
        partners = session.scalar(
            select(func.count()).select_from(Partner).where(Partner.identity_id == identity_id)
        )
    return {"campaign_id": campaign.id, "partners": int(partners or 0), "seconds": seconds}


def run_due(
    engine: Engine, settings: Settings, keyring: KeyRing, signer: LinkSigner
) -> dict[str, Any]:
    """One jobs.run_once at now, as `portal run-due` does it: seconds and what it did."""
    with Session(engine, expire_on_commit=False) as session:
        started = time.perf_counter()
        result = jobs.run_once(session, settings, signer, keyring, now=utcnow())
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "performed": result.performed,
        "failed": result.failed,
        "sent": result.sent,
        "unsent": result.unsent,
        "planned": result.planned,
    }


def add_due_effects(engine: Engine, count: int, admin_id: int) -> None:
    """COUNT fulfilled download links, each with its due `link.fulfilled` side effect."""
    now = utcnow()
    with engine.begin() as connection:
        partner_ids = list(connection.scalars(select(Partner.id).order_by(Partner.id)))
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            ids = [new_link_id() for _ in range(size)]
            connection.execute(
                insert(ShareLink),
                [
                    {
                        "id": link_id,
                        "partner_id": partner_ids[(start + n) % len(partner_ids)],
                        "can_download": True,
                        "can_upload": False,
                        "expires_at": now + timedelta(days=7),
                        "max_uploads": 0,
                        "uploads_used": 0,
                        "opened_count": 1,
                        "download_count": 1,
                        "created_by_id": admin_id,
                        "created_at": now - timedelta(days=3),
                    }
                    for n, link_id in enumerate(ids)
                ],
            )
            connection.execute(
                insert(SideEffect),
                [
                    {
                        "key": f"{LINK_FULFILLED}:{link_id}",
                        "kind": LINK_FULFILLED,
                        "due_at": now - timedelta(minutes=1),
                        "payload": {"link_id": link_id},
                        "attempts": 0,
                        "created_at": now - timedelta(minutes=1),
                    }
                    for link_id in ids
                ],
            )
