"""The audit trail never holds a secret: after a flow touching every kind of credential,
no event's summary or details contains a link token, a password, an API token secret,
a keystore passphrase or a private key."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.domain.certs import export
from portal.extensions import keyring, link_signer
from portal.models import AuditEvent
from portal.services import (
    api_tokens,
    approvals,
    audit,
    certificates,
    key_export,
    links,
    submissions,
    users,
)
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.schedulehelpers import OVERLAP, partner_cert

PASSPHRASE = "keystore passphrase 4 audit scan"


@pytest.fixture(autouse=True)
def cheap_key_encryption(monkeypatch: pytest.MonkeyPatch) -> None:
    """PBKDF2 at 1,000 rounds (production's count is tested elsewhere)."""
    monkeypatch.setattr(export, "_PKCS12_KDF_ROUNDS", 1_000)


def test_no_event_holds_a_token_password_secret_or_key(app, session, client, make_user) -> None:
    now = utcnow()
    admin = Actor.for_user(make_user("admin"))
    approver = Actor.for_user(make_user("approver"))
    secrets: list[str] = []

    user, password = users.create_user(session, admin, email="scan@example.com", role="operator")
    secrets += [password or "", users.reset_password(session, admin, user)]
    made = api_tokens.create(session, admin, "scanner", ["config:read"], now=now)
    secrets.append(made.secret)
    api_tokens.revoke(session, admin, made.token.name, now=now)

    identity = factories.identity(session)
    generated = certificates.generate(
        session, admin, keyring(), identity, usage="both", key_size=2048, days=365, now=now
    )
    exported = key_export.export_pkcs12(
        session, admin, keyring(), generated, passphrase=PASSPHRASE, legacy=False
    )
    assert exported
    secrets.append(PASSPHRASE)

    partner = factories.partner(session, identity)
    link, token = links.create_link(
        session, admin, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=14), max_uploads=5, now=now,
    )  # fmt: skip
    secrets += [token, token.split(".")[-1]]
    session.commit()
    assert client.get(f"/s/{token}").status_code == 200
    received = [
        submissions.submit_via_link(
            session, Actor(f"partner via link {link.id}"), link,
            data=certfactory.pem(partner_cert()), usage="both", now=utcnow(), overlap=OVERLAP,
            confirm_warnings=True,
        ).submission
        for _ in range(2)
    ]  # fmt: skip
    assert None not in received
    approvals.approve_submission(
        session, approver, received[0], activate_at=utcnow() + timedelta(days=3), now=utcnow(),
        four_eyes_always=True,
    )  # fmt: skip
    approvals.reject_submission(session, approver, received[1], reason="Wrong key", now=utcnow())
    session.commit()

    events = session.scalars(select(AuditEvent)).all()
    actions = {event.action for event in events}
    assert {"user.created", "user.password_reset", "token.created", "token.revoked",
            "certificate.added", "certificate.keystore_exported", "link.created",
            "link.opened", "submission.received", "submission.first_approval",
            "submission.rejected"} <= actions  # fmt: skip
    text = "\n".join(
        f"{e.summary}\n{json.dumps(e.details)}\n{e.actor}\n{e.user_agent}" for e in events
    )
    for secret in secrets:
        assert secret
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert audit.verify(session).broken is None
