"""Certificates made by the real openssl command, through the partner upload (machine and
page), `portal cert inspect` and `portal identity import`.

OpenSSL 3's `openssl req -x509` marks a self-signed certificate CA:TRUE by default; every
caller of the checker accepts it with the `self_signed_ca_flag` warning: a tick on the
partner's page, a reported finding for scripts and the command line.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from portal.models import Certificate
from tests import factories, realtools
from tests.linkhelpers import pem_file, share, submissions_of, typed, uploads_used
from tests.realtools import Made

WARNING = "self_signed_ca_flag"


@pytest.fixture(scope="module")
def openssl_default(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """`openssl req -x509 -newkey rsa:3072 -nodes ...` with nothing else, as partners run it."""
    made = realtools.openssl_self_signed(tmp_path_factory.mktemp("openssl"), "partner")
    if not made.marked_ca:
        pytest.skip("this openssl does not mark `req -x509` certificates CA:TRUE by default")
    return made


def sha256_of(made: Made) -> str:
    return made.certificate.fingerprint(hashes.SHA256()).hex()


def test_machine_upload_of_an_openssl_default_certificate_is_201_with_the_warning(
    client, session, openssl_default: Made
) -> None:
    shared = share(session)

    response = client.post(
        f"{shared.page}/certificate",
        data=openssl_default.pem,
        content_type="application/x-pem-file",
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["report"]["acceptable"] is True
    assert answer["status"] == "received"
    (warning,) = [f for f in answer["report"]["findings"] if f["code"] == WARNING]
    assert warning["severity"] == "warning"
    assert "CA:TRUE" in warning["message"]
    assert "ca_certificate" not in [f["code"] for f in answer["report"]["findings"]]
    (submission,) = submissions_of(session, shared.partner)
    assert submission.sha256 == sha256_of(openssl_default)
    assert WARNING in {f["code"] for f in submission.report["findings"]}


def test_page_upload_of_an_openssl_default_certificate_needs_the_tick(
    client, session, openssl_default: Made
) -> None:
    shared = share(session)
    form = typed(certificate=pem_file(openssl_default.pem, "partner.crt"))

    unticked = client.post(f"{shared.page}/upload", data=form)

    assert unticked.status_code == 200
    page = unticked.get_data(as_text=True)
    assert "Please confirm" in page
    assert "marked as a certificate authority (basic constraints CA:TRUE)" in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0

    form = typed(certificate=pem_file(openssl_default.pem, "partner.crt"), confirm_warnings="y")
    ticked = client.post(f"{shared.page}/upload", data=form)

    assert ticked.status_code == 302, ticked.get_data(as_text=True)
    (submission,) = submissions_of(session, shared.partner)
    assert submission.sha256 == sha256_of(openssl_default)


def test_cert_inspect_reports_the_warning_and_exits_0(runner, openssl_default: Made) -> None:
    path = str(openssl_default.cert_path)

    text = runner.invoke(args=["cert", "inspect", path])
    as_json = runner.invoke(args=["cert", "inspect", "--json", path])

    assert text.exit_code == 0, text.output
    assert f"WARNING  {WARNING}: " in text.output
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["acceptable"] is True
    assert WARNING in [f["code"] for f in document["findings"]]


def test_identity_import_of_our_own_openssl_default_certificate_is_accepted(
    runner, session, openssl_default: Made
) -> None:
    factories.identity(session, as2_id="OPENSSLAS2")
    assert openssl_default.key_path is not None

    result = runner.invoke(
        args=["identity", "import", "--as2-id", "OPENSSLAS2",
              "--cert", str(openssl_default.cert_path),
              "--key", str(openssl_default.key_path), "--usage", "both"]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Warning: Your certificate is marked as a certificate authority" in result.output
    stored = session.scalars(select(Certificate)).one()
    assert stored.sha256 == sha256_of(openssl_default)
