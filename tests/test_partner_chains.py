"""Partner certificate chains end to end: a CA-issued certificate uploaded with its
intermediate (partner page, machine upload, staff upload) is received with the
intermediate, approved, and published so that a verifier trusting only the partner's
root accepts it: cryptography's PolicyBuilder and the real `openssl verify`.

The root, intermediate and leaf are made at test time (tests/certfactory.py `make_pki`);
no key material is committed. The root sent along is not kept: a verifier must trust it
itself, so `chain_pem` holds exactly the intermediates, the certificate's issuer first.
"""

from __future__ import annotations

import io
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509 import verification
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.models import Certificate, Submission
from portal.services import certificates
from portal.timeutil import utcnow
from tests import certfactory, factories, realtools
from tests.linkhelpers import (
    Shared,
    browser_form,
    pem_file,
    share,
    submissions_of,
    upload_fields,
    uploads_used,
)
from tests.schedulehelpers import plain


@pytest.fixture
def pki() -> certfactory.Pki:
    return certfactory.make_pki(now=utcnow())


def pem_text(*certs: x509.Certificate) -> str:
    return certfactory.pem(*certs).decode("ascii")


def approve(client: FlaskClient, session: Session, submission: Submission) -> Certificate:
    """Approve SUBMISSION from now through the review page; the certificate it created."""
    response = client.post(f"/submissions/{submission.id}/approve", data={"approve-when": "now"})
    assert response.status_code == 302, plain(response)
    session.refresh(submission)
    assert submission.status == "approved"
    certificate = session.get(Certificate, submission.certificate_id)
    assert certificate is not None
    return certificate


def published(client: FlaskClient, certificate: Certificate) -> dict[str, list[x509.Certificate]]:
    """The certificates in each public download of CERTIFICATE, in file order."""
    base = f"/certificates/{certificate.id}/download"
    pem = client.get(f"{base}.pem")
    p7c = client.get(f"{base}.p7c")
    cer = client.get(f"{base}.cer")
    assert pem.status_code == p7c.status_code == cer.status_code == 200
    return {
        "pem": x509.load_pem_x509_certificates(pem.data),
        "p7c": pkcs7.load_der_pkcs7_certificates(p7c.data),
        "cer": [x509.load_der_x509_certificate(cer.data)],
    }


def verify_with_cryptography(
    root: x509.Certificate, leaf: x509.Certificate, intermediates: list[x509.Certificate]
) -> list[x509.Certificate]:
    """The path cryptography's verifier builds from LEAF to ROOT, the only certificate trusted.

    WebPKI rules for the CAs (basic constraints, key usage, ...); any extensions on the leaf,
    which is an AS2 certificate, not a TLS server's.
    """
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .time(utcnow())
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    return list(verifier.verify(leaf, intermediates).chain)


def openssl_verify(
    directory: Path,
    root: x509.Certificate,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
) -> subprocess.CompletedProcess[str]:
    """`openssl verify -CAfile root.pem [-untrusted chain.pem] leaf.pem`."""
    binary = realtools.openssl_binary()
    (directory / "root.pem").write_bytes(certfactory.pem(root))
    (directory / "leaf.pem").write_bytes(certfactory.pem(leaf))
    command = [binary, "verify", "-CAfile", str(directory / "root.pem")]
    if intermediates:
        (directory / "chain.pem").write_bytes(certfactory.pem(*intermediates))
        command += ["-untrusted", str(directory / "chain.pem")]
    return subprocess.run(  # noqa: S603  (the openssl found on PATH, arguments built here)
        [*command, str(directory / "leaf.pem")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def assert_published_and_verifiable(
    client: FlaskClient, certificate: Certificate, pki: certfactory.Pki, directory: Path
) -> None:
    """The chain is stored as the intermediate alone and every download lets a verifier in."""
    assert certificate.chain_pem == pem_text(pki.intermediate)
    assert certificates.chain_pems(certificate) == [pem_text(pki.intermediate)]
    files = published(client, certificate)
    assert files["pem"] == [pki.leaf, pki.intermediate]  # the certificate, then its chain
    assert set(files["p7c"]) == {pki.leaf, pki.intermediate}  # PKCS#7 holds a set, DER-sorted
    assert files["cer"] == [pki.leaf]
    leaf, *chain = files["pem"]
    assert verify_with_cryptography(pki.root, leaf, chain) == [leaf, pki.intermediate, pki.root]
    with pytest.raises(verification.VerificationError):
        verify_with_cryptography(pki.root, leaf, [])  # the published intermediate is needed
    result = openssl_verify(directory, pki.root, leaf, [c for c in files["p7c"] if c != leaf])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("leaf.pem: OK")
    assert openssl_verify(directory, pki.root, leaf, []).returncode != 0


# ---------------------------------------------------------------------------
# Accepted, approved, published, verifiable
# ---------------------------------------------------------------------------


def test_partner_page_upload_with_intermediate_is_published_verifiable(
    client, session, approver_client, pki, tmp_path
) -> None:
    shared = share(session)
    data = upload_fields(shared, client, certificate=pem_file(pki.bundle), usage="both")

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 302, plain(response)
    (submission,) = submissions_of(session, shared.partner)
    assert submission.chain_pem == pem_text(pki.intermediate)
    assert submission.report["intermediates"][0]["subject"] == (
        "O=Partner Trust Services,CN=Partner Issuing CA"
    )
    certificate = approve(approver_client, session, submission)
    assert certificate.source == "uploaded"
    assert_published_and_verifiable(approver_client, certificate, pki, tmp_path)


def test_machine_upload_of_a_pem_bundle_is_published_verifiable(
    client, session, approver_client, pki, tmp_path
) -> None:
    shared = share(session)

    response = client.post(
        f"/s/{shared.token}/certificate?usage=both",
        data=pki.bundle,
        content_type="application/x-pem-file",
    )

    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["report"]["acceptable"] is True
    assert [c["subject"] for c in answer["report"]["intermediates"]] == [
        "O=Partner Trust Services,CN=Partner Issuing CA"
    ]
    submission = session.get(Submission, answer["submission_id"])
    assert submission is not None
    assert submission.chain_pem == pem_text(pki.intermediate)
    certificate = approve(approver_client, session, submission)
    assert_published_and_verifiable(approver_client, certificate, pki, tmp_path)


def test_staff_upload_of_a_p7c_bundle_on_the_partners_behalf(
    session, operator_client, approver_client, pki, tmp_path
) -> None:
    partner = factories.partner(session)
    p7c = pkcs7.serialize_certificates([pki.root, pki.leaf, pki.intermediate], Encoding.DER)

    response = operator_client.post(
        f"/partners/{partner.id}/certificates",
        data={"upload-certificate": (io.BytesIO(p7c), "globex.p7c"), "upload-usage": "both"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 302, plain(response)
    (submission,) = submissions_of(session, partner)
    assert submission.chain_pem == pem_text(pki.intermediate)
    certificate = approve(approver_client, session, submission)
    assert certificate.source == "staff"
    assert_published_and_verifiable(approver_client, certificate, pki, tmp_path)


def test_review_page_shows_the_chain_to_the_approver(client, session, approver_client, pki) -> None:
    shared = share(session)
    client.post(f"/s/{shared.token}/certificate", data=pki.bundle, content_type="text/plain")
    (submission,) = submissions_of(session, shared.partner)

    page = plain(approver_client.get(f"/submissions/{submission.id}"))

    chain_section = page.split("Chain", 1)[1].split("Compared with the certificate in force")[0]
    assert "O=Partner Trust Services,CN=Partner Issuing CA" in chain_section  # subject
    assert "O=Test CA Org,CN=Partner Root CA" in chain_section  # its issuer
    until = pki.intermediate.not_valid_after_utc
    assert until.strftime("%Y-%m-%d") in chain_section  # validity
    assert "The root 'O=Test CA Org,CN=Partner Root CA' is not kept" in chain_section


def test_certificate_page_lists_the_chain(client, session, approver_client, pki) -> None:
    shared = share(session)
    client.post(f"/s/{shared.token}/certificate", data=pki.bundle, content_type="text/plain")
    (submission,) = submissions_of(session, shared.partner)
    certificate = approve(approver_client, session, submission)

    page = plain(approver_client.get(f"/certificates/{certificate.id}"))

    assert "1 CA certificate(s)" in page
    assert "O=Partner Trust Services,CN=Partner Issuing CA" in page


def test_self_signed_partner_certificate_has_no_chain(
    client, session, approver_client, received
) -> None:
    submission = received["submission"]
    assert submission.chain_pem == ""
    certificate = approve(approver_client, session, submission)
    assert certificate.chain_pem == ""
    assert certificates.chain_pems(certificate) == []
    files = published(approver_client, certificate)
    assert len(files["pem"]) == len(files["p7c"]) == 1
    page = plain(approver_client.get(f"/submissions/{submission.id}"))
    assert "No intermediate CA certificates" in page


# ---------------------------------------------------------------------------
# Broken chains: refused or warned, with a message a person can act on
# ---------------------------------------------------------------------------


def _rekeyed(pki: certfactory.Pki, now: datetime) -> bytes:
    """The intermediate's name on another key: it did not issue the leaf."""
    rekeyed, _ = certfactory.make_intermediate(now=now, issuer=(pki.root, pki.root_key), slot=8)
    return certfactory.pem(pki.leaf, rekeyed, pki.root)


def _false_root(pki: certfactory.Pki, now: datetime) -> bytes:
    """The root's name on another key: it did not issue the intermediate."""
    false_root, _ = certfactory.make_cert(
        now=now, key=certfactory.rsa_key(2048, slot=9), ca=True,
        usage_flags=certfactory.CA_KU, subject=pki.root.subject, days=3650,
    )  # fmt: skip
    return certfactory.pem(pki.leaf, pki.intermediate, false_root)


def _issued_by(pki: certfactory.Pki, now: datetime, **intermediate: Any) -> bytes:
    """A leaf issued by an intermediate made with INTERMEDIATE's settings."""
    ca, ca_key = certfactory.make_intermediate(
        now=now, issuer=(pki.root, pki.root_key), slot=10, **intermediate
    )
    leaf, _ = certfactory.make_cert(
        now=now, key=certfactory.rsa_key(3072), days=400, issuer=(ca, ca_key),
        subject=certfactory.name("GLOBEXAS2", "Globex Corp"),
    )  # fmt: skip
    return certfactory.pem(leaf, ca, pki.root)


def _not_a_ca(pki: certfactory.Pki, now: datetime) -> bytes:
    return _issued_by(pki, now, cn="Not A CA", ca=False)


def _expired(pki: certfactory.Pki, now: datetime) -> bytes:
    return _issued_by(
        pki, now, cn="Old CA",
        not_before=now - timedelta(days=800), not_after=now - timedelta(days=2),
    )  # fmt: skip


def _unrelated(pki: certfactory.Pki, now: datetime) -> bytes:
    stranger, _ = certfactory.make_intermediate(
        now=now, issuer=(pki.root, pki.root_key), cn="Some Other CA", slot=6
    )
    return certfactory.pem(pki.leaf, stranger)


REFUSED = {
    "intermediate-did-not-issue-leaf": (
        _rekeyed, "bad_signature",
        "does not verify with the key of the CA certificate "
        "'O=Partner Trust Services,CN=Partner Issuing CA' sent with it",
    ),
    "root-did-not-issue-intermediate": (
        _false_root, "chain_bad_signature", "these CA certificates do not belong together",
    ),
    "non-ca-intermediate": (
        _not_a_ca, "chain_not_ca",
        "'O=Partner Trust Services,CN=Not A CA' in the file issued "
        "'O=Globex Corp,CN=GLOBEXAS2' but is not a CA (basic constraints CA:TRUE)",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("build", "code", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_machine_upload_refuses_a_broken_chain(
    client, session, pki, build: Any, code: str, message: str
) -> None:
    shared = share(session)

    response = client.post(
        f"/s/{shared.token}/certificate", data=build(pki, utcnow()), content_type="text/plain"
    )

    assert response.status_code == 422
    errors = [f for f in response.get_json()["report"]["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == [code]
    assert message in errors[0]["message"]
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


@pytest.mark.parametrize(("build", "code", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_partner_page_refuses_a_broken_chain(
    client, session, pki, build: Any, code: str, message: str
) -> None:
    shared = share(session)
    data = upload_fields(shared, client, certificate=pem_file(build(pki, utcnow())))

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 422
    assert message in plain(response)  # the partner reads the message; the code is for scripts
    assert submissions_of(session, shared.partner) == []


WARNED = {
    "expired-intermediate": (
        _expired, "chain_expired",
        "'O=Partner Trust Services,CN=Old CA' included in the file expired on",
        "O=Partner Trust Services,CN=Old CA",
    ),
    "unrelated-extra-certificate": (
        _unrelated, "chain_unrelated",
        "'O=Partner Trust Services,CN=Some Other CA' in the file did not issue your certificate",
        None,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("build", "code", "message", "kept"), WARNED.values(), ids=WARNED.keys())
def test_machine_upload_warns_about_a_doubtful_chain(
    client, session, pki, build: Any, code: str, message: str, kept: str | None
) -> None:
    shared = share(session)

    response = client.post(
        f"/s/{shared.token}/certificate", data=build(pki, utcnow()), content_type="text/plain"
    )

    assert response.status_code == 201  # warnings do not block a script
    warnings = [f for f in response.get_json()["report"]["findings"] if f["severity"] == "warning"]
    assert [f["code"] for f in warnings] == [code]
    assert message in warnings[0]["message"]
    (submission,) = submissions_of(session, shared.partner)
    stored = [c.subject for c in certificates.chain_details(submission.chain_pem)]
    assert stored == ([kept] if kept else [])


@pytest.mark.parametrize(("build", "code", "message", "kept"), WARNED.values(), ids=WARNED.keys())
def test_partner_page_asks_to_confirm_a_doubtful_chain_and_keeps_it_through_the_tick(
    client, session, pki, build: Any, code: str, message: str, kept: str | None
) -> None:
    shared: Shared = share(session)
    data = upload_fields(shared, client, certificate=pem_file(build(pki, utcnow())))

    first = client.post(f"{shared.page}/upload", data=data)

    assert first.status_code == 200
    assert "Please confirm" in plain(first)
    assert message in plain(first)
    assert submissions_of(session, shared.partner) == []
    confirm = browser_form(first.get_data(as_text=True), f"{shared.page}/upload")
    ticked = client.post(f"{shared.page}/upload", data={**confirm, "confirm_warnings": "y"})
    assert ticked.status_code == 302, plain(ticked)
    (submission,) = submissions_of(session, shared.partner)
    assert code in {f["code"] for f in submission.report["findings"]}
    stored = [c.subject for c in certificates.chain_details(submission.chain_pem)]
    assert stored == ([kept] if kept else [])


def test_the_config_api_publishes_the_chain_an_engine_can_verify(
    client, session, approver_client, pki
) -> None:
    """An engine that validates chains gets leaf and intermediates from /api/v1/config."""
    from portal.services import api_tokens

    shared = share(session)
    response = client.post(
        f"/s/{shared.token}/certificate?usage=both", data=pki.bundle, content_type="text/plain"
    )
    assert response.status_code == 201, response.get_json()
    submission = session.get(Submission, response.get_json()["submission_id"])
    assert submission is not None
    approve(approver_client, session, submission)
    made = api_tokens.create(session, factories.ACTOR, "engine", ["config:read"], now=utcnow())

    document = client.get(
        f"/api/v1/config?partner={shared.partner.as2_id}",
        headers={"Authorization": f"Bearer {made.secret}"},
    ).get_json()

    (entry,) = document["partners"]
    sent = entry["certificates"]["signing"]["send"]
    assert sent["chain"] == [pem_text(pki.intermediate)]
    leaf = x509.load_pem_x509_certificate(sent["pem"].encode())
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in sent["chain"]]
    assert verify_with_cryptography(pki.root, leaf, chain) == [leaf, pki.intermediate, pki.root]
