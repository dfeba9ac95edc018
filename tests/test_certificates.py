"""Identity certificates through the staff pages: generate, import, CSR, download, export;
keys encrypted at rest; partner certificates shown with their details."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select, text

from portal.domain import certs
from portal.domain.certs import sha256_hex
from portal.extensions import keyring
from portal.models import AuditEvent, Base, Certificate, PendingKey
from portal.services import certificates
from portal.timeutil import utcnow
from tests import certfactory, factories


@pytest.fixture
def identity(session):
    return factories.identity(session, as2_id="ACMEAS2", organisation="Acme Corp")


def upload(data: bytes, name: str = "file.pem") -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), name


def database_dump(session) -> bytes:
    """Every value of every table, as a dump tool would write it."""
    chunks: list[bytes] = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
            for value in row:
                if isinstance(value, bytes | memoryview):
                    chunks.append(bytes(value))
                else:
                    chunks.append(str(value).encode())
    return b"\n".join(chunks)


def assert_no_plaintext_key(session, key_der: bytes) -> None:
    dump = database_dump(session)
    assert key_der not in dump
    assert base64.b64encode(key_der)[:64] not in dump
    assert b"PRIVATE KEY" not in dump


def test_generate_stores_an_encrypted_key_only(app, operator_client, session, identity) -> None:
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/generate",
        data={"generate-usage": "signing", "generate-key_size": "2048", "generate-days": "365"},
    )
    assert response.status_code == 302
    certificate = session.scalars(select(Certificate)).one()
    assert response.headers["Location"] == f"/certificates/{certificate.id}"
    assert (certificate.usage, certificate.key_size, certificate.source) == (
        "signing",
        2048,
        "generated",
    )
    assert certificate.activate_at is None  # not in force until scheduled
    assert "CN=ACMEAS2" in certificate.subject
    assert "O=Acme Corp" in certificate.subject
    key_der = keyring().decrypt(
        certificate.encrypted_private_key,
        associated_data=certificates.certificate_aad(certificate.sha256),
    )
    key = certs.private_key_from_der(key_der)
    cert = x509.load_der_x509_certificate(certificate.der)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert_no_plaintext_key(session, key_der)
    page = operator_client.get(f"/certificates/{certificate.id}").get_data(as_text=True)
    assert certfactory_fingerprint(cert) in page
    assert "pending: not scheduled" in page


def certfactory_fingerprint(cert: x509.Certificate) -> str:
    return certs.certificate_info(certfactory.der(cert)).fingerprint_sha256


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"generate-key_size": "1024"}, "Choose one of the options offered"),
        ({"generate-days": "0"}, "from 1 to 3650"),
        ({"generate-days": "abc"}, "Enter a whole number"),
        ({"generate-usage": "decoration"}, "Choose one of the options offered"),
    ],
)
def test_generate_bad_input(operator_client, session, identity, data, message) -> None:
    form = {"generate-usage": "both", "generate-key_size": "2048", "generate-days": "30"}
    form.update(data)
    response = operator_client.post(f"/identities/{identity.id}/certificates/generate", data=form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert session.scalar(select(Certificate)) is None


def test_import_pem_pair_with_encrypted_key(operator_client, session, identity) -> None:
    cert, key = certfactory.make_cert(now=utcnow(), days=400)
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={
            "format": "pem",
            "pem-usage": "encryption",
            "pem-certificate": upload(certfactory.pem(cert)),
            "pem-private_key": upload(certfactory.key_bytes(key, password=b"key secret")),
            "pem-passphrase": "key secret",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = session.scalars(select(Certificate)).one()
    assert stored.source == "imported"
    assert stored.usage == "encryption"
    assert_no_plaintext_key(
        session,
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.mark.parametrize("case", ["wrong_passphrase", "other_key", "garbage", "too_large"])
def test_import_refusals_store_nothing(operator_client, session, identity, case) -> None:
    cert, key = certfactory.make_cert(now=utcnow())
    key_data = certfactory.key_bytes(key, password=b"right")
    cert_data = certfactory.pem(cert)
    passphrase = "right"
    if case == "wrong_passphrase":
        passphrase = "wrong"
    elif case == "other_key":
        key_data = certfactory.key_bytes(certfactory.rsa_key(2048, slot=3))
        passphrase = ""
    elif case == "garbage":
        cert_data = b"\x00\x01 not a certificate"
    elif case == "too_large":
        cert_data = b"A" * (64 * 1024 + 1)
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={
            "format": "pem",
            "pem-usage": "both",
            "pem-certificate": upload(cert_data),
            "pem-private_key": upload(key_data),
            "pem-passphrase": passphrase,
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert 'class="flash flash-error"' in response.get_data(as_text=True)
    assert session.scalar(select(Certificate)) is None


def test_import_expired_certificate_is_refused(operator_client, session, identity) -> None:
    now = utcnow()
    cert, key = certfactory.make_cert(
        now=now, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={
            "format": "pem",
            "pem-usage": "both",
            "pem-certificate": upload(certfactory.pem(cert)),
            "pem-private_key": upload(certfactory.key_bytes(key)),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "expired" in response.get_data(as_text=True)


def test_import_pkcs12_and_export_round_trip(operator_client, session, identity) -> None:
    cert, key = certfactory.make_cert(now=utcnow())
    p12 = certs.export_pkcs12(
        private_key=key,
        certificate_der=certfactory.der(cert),
        chain_ders=[],
        passphrase=b"import pass",
        friendly_name=b"test",
    )
    wrong = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={"format": "p12", "p12-usage": "both", "p12-keystore": upload(p12, "a.p12"),
              "p12-passphrase": "nope"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert wrong.status_code == 422
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={"format": "p12", "p12-usage": "both", "p12-keystore": upload(p12, "a.p12"),
              "p12-passphrase": "import pass"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 302
    stored = session.scalars(select(Certificate)).one()
    for legacy in (False, True):
        form = {"passphrase": "export passphrase", "confirm": "export passphrase"}
        if legacy:
            form["legacy"] = "y"
        exported = operator_client.post(f"/certificates/{stored.id}/keystore", data=form)
        assert exported.status_code == 200
        assert exported.mimetype == "application/x-pkcs12"
        assert exported.headers["Content-Disposition"].endswith('.p12"')
        loaded = certs.load_pkcs12(exported.data, b"export passphrase")
        assert loaded.certificate.der == certfactory.der(cert)
        assert loaded.private_key.private_numbers() == key.private_numbers()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "certificate.keystore_exported")
    ).all()
    assert [e.details["legacy"] for e in events] == [False, True]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"passphrase": "short", "confirm": "short"}, "at least 8"),
        ({"passphrase": "long enough one", "confirm": "different one"}, "entries differ"),
    ],
)
def test_export_refusals(app, operator_client, session, identity, form, message) -> None:
    stored = factories.identity_certificate(session, keyring(), identity)
    response = operator_client.post(f"/certificates/{stored.id}/keystore", data=form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert not session.scalars(
        select(AuditEvent).where(AuditEvent.action == "certificate.keystore_exported")
    ).all()


def test_public_downloads_in_every_format(app, viewer_client, session, identity) -> None:
    stored = factories.identity_certificate(session, keyring(), identity)
    pem = viewer_client.get(f"/certificates/{stored.id}/download.pem")
    assert x509.load_pem_x509_certificate(pem.data).fingerprint is not None
    assert pem.headers["Content-Disposition"] == (
        f'attachment; filename="ACMEAS2-both-{stored.sha256[:16]}.pem"'
    )
    cer = viewer_client.get(f"/certificates/{stored.id}/download.cer")
    assert cer.data == stored.der
    p7c = viewer_client.get(f"/certificates/{stored.id}/download.p7c")
    loaded = pkcs7.load_der_pkcs7_certificates(p7c.data)
    assert [c.public_bytes(serialization.Encoding.DER) for c in loaded] == [stored.der]
    assert viewer_client.get(f"/certificates/{stored.id}/download.exe").status_code == 404
    assert b"PRIVATE" not in pem.data + cer.data + p7c.data


def test_csr_flow(app, operator_client, session, identity) -> None:
    response = operator_client.post(
        f"/identities/{identity.id}/csr", data={"csr-usage": "both", "csr-key_size": "2048"}
    )
    assert response.status_code == 302
    pending = session.scalars(select(PendingKey)).one()
    csr_response = operator_client.get(f"/identities/{identity.id}/csr/{pending.id}.csr")
    csr = x509.load_pem_x509_csr(csr_response.data)
    assert csr.is_signature_valid
    assert "identity page" not in csr_response.get_data(as_text=True)
    now = utcnow()
    ca_cert, ca_key = certfactory.make_ca(now=now)
    # A certificate for some other key is refused.
    stranger, _ = certfactory.make_cert(now=now, issuer=(ca_cert, ca_key))
    refused = operator_client.post(
        f"/identities/{identity.id}/csr/{pending.id}/complete",
        data={"complete-certificate": upload(certfactory.pem(stranger, ca_cert))},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "does not match" in refused.get_data(as_text=True)
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, certfactory.hashes.SHA256())
    )
    response = operator_client.post(
        f"/identities/{identity.id}/csr/{pending.id}/complete",
        data={"complete-certificate": upload(certfactory.pem(signed, ca_cert))},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = session.scalars(select(Certificate)).one()
    assert stored.source == "csr"
    assert certificates.chain_ders(stored) == [certfactory.der(ca_cert)]
    session.refresh(pending)
    assert pending.completed_at is not None
    assert pending.certificate_id == stored.id
    again = operator_client.post(
        f"/identities/{identity.id}/csr/{pending.id}/complete",
        data={"complete-certificate": upload(certfactory.pem(signed))},
        content_type="multipart/form-data",
    )
    assert again.status_code == 422
    assert "already completed" in again.get_data(as_text=True)


def test_identity_page_lists_certificates_and_actions(app, operator_client, session, identity):
    factories.identity_certificate(session, keyring(), identity, usage="signing")
    page = operator_client.get(f"/identities/{identity.id}").get_data(as_text=True)
    assert "Generate a new certificate" in page
    assert "signing" in page
    assert "pending: not scheduled" in page


def test_partner_page_shows_partner_certificates(viewer_client, session) -> None:
    partner = factories.partner(session)
    page = viewer_client.get(f"/partners/{partner.id}").get_data(as_text=True)
    assert "No certificate from this partner yet" in page
    cert, _ = certfactory.make_cert(now=utcnow(), subject=certfactory.name("<b>Globex</b>"))
    info = certs.certificate_info(certfactory.der(cert))
    row = Certificate(
        partner_id=partner.id,
        usage="encryption",
        der=info.der,
        sha256=sha256_hex(info.fingerprint_sha256),
        sha1=sha256_hex(info.fingerprint_sha1),
        subject=info.subject,
        issuer=info.issuer,
        serial=info.serial,
        not_before=info.not_before,
        not_after=info.not_after,
        key_type=info.key_type,
        key_size=info.key_size,
        source="uploaded",
    )
    session.add(row)
    session.flush()
    page = viewer_client.get(f"/partners/{partner.id}").get_data(as_text=True)
    assert "<b>Globex" not in page
    assert "&lt;b\\&gt;Globex" in page
    detail = viewer_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    assert info.fingerprint_sha256 in detail
    assert info.fingerprint_sha1 in detail
    assert "Export with the private key" not in detail


def test_oversized_request_gets_a_readable_413(operator_client, identity) -> None:
    response = operator_client.post(
        f"/identities/{identity.id}/certificates/import",
        data={"format": "pem", "pem-certificate": upload(b"A" * (2 * 1024 * 1024))},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than this portal accepts" in response.get_data(as_text=True)
