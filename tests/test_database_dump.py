"""A copy of the whole database (a stolen backup) gives away no secret in plaintext.

After a flow that makes every kind of secret the portal handles (a private key, a staff
password, two-factor secret and recovery codes, a share-link token, an API token, a webhook
signing secret), a dump of every value of every table holds none of them as text, in hex
or in base64, and no PEM private key.
"""

from __future__ import annotations

import base64
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from portal.extensions import keyring, link_signer
from portal.services import api_tokens, certificates, links, webhooks
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import TEST_PASSWORD
from tests.test_certificates import database_dump


def spellings(secret: str | bytes) -> set[bytes]:
    """SECRET as a dump could show it: raw, hex (both cases) and base64 (a long prefix)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    found.add(base64.b64encode(raw)[:40])
    found.add(base64.urlsafe_b64encode(raw)[:40])
    return {s for s in found if len(s) >= 12}


def test_a_database_dump_holds_no_plaintext_key_password_code_or_token(
    app, session, client, make_user
) -> None:
    now = utcnow()
    identity = factories.identity(session)
    cert, key = certfactory.make_cert(now=now, days=365)
    certificates.import_pem(
        session, factories.ACTOR, keyring(), identity, cert_data=certfactory.pem(cert),
        key_data=certfactory.key_bytes(key), passphrase=None, usage="both", now=now,
    )  # fmt: skip
    key_der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    user = make_user("admin")
    totp_secret, recovery_codes = factories.two_factor(session, keyring(), user, now=now)
    partner = factories.partner(session, identity)
    _, token = links.create_link(
        session, factories.ACTOR, link_signer(), partner, can_download=True, can_upload=True,
        lifetime=timedelta(days=3), max_uploads=1, now=now,
    )  # fmt: skip
    api = api_tokens.create(session, factories.ACTOR, "engine", ["config:read"], now=now)
    hook = webhooks.create(
        session, factories.ACTOR, keyring(), "http://127.0.0.1:9/portal-hook",
        ["certificate.activated"], now=now, allow_private=True,  # loopback: no lookup
    )  # fmt: skip
    session.commit()
    assert client.get(f"/s/{token}").status_code == 200  # the link used once, as partners do

    dump = database_dump(session)

    secrets = {
        "private key": key_der,
        "staff password": TEST_PASSWORD,
        "TOTP secret": totp_secret,
        "link token": token,
        "link signature": token.rpartition(".")[2],
        "API token": api.secret,
        "webhook secret": hook.secret,
        **{f"recovery code {n}": code for n, code in enumerate(recovery_codes)},
    }
    leaked = [
        name for name, secret in secrets.items() for shown in spellings(secret) if shown in dump
    ]
    assert leaked == []
    assert b"PRIVATE KEY" not in dump
