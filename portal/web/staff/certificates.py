"""Staff views for certificates: generate, import, CSR, download, keystore export."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage

from portal.clock import request_now
from portal.domain import certs
from portal.domain.certs import colon_fingerprint
from portal.domain.roles import Permission
from portal.extensions import db, keyring
from portal.models import Identity
from portal.services import audit, certificates, directory, key_export
from portal.services.errors import ServiceError
from portal.web.access import current_actor, requires, requires_recent_login
from portal.web.forms import attach_error
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import (
    CompleteCsrForm,
    CsrForm,
    ExportKeystoreForm,
    GenerateCertificateForm,
    ImportPemForm,
    ImportPkcs12Form,
)
from portal.web.staff.pages import Rendered, identity_page_context, render_certificate_page


@bp.post("/identities/<id:identity_id>/certificates/generate")
@requires(Permission.MANAGE_PARTNERS)
def certificate_generate(identity_id: int) -> Rendered:
    """Generate a new key and self-signed certificate (not in force until scheduled)."""
    identity = directory.get_identity(db.session, identity_id)
    form = GenerateCertificateForm(prefix="generate")
    if form.validate_on_submit():
        try:
            certificate = certificates.generate(
                db.session,
                current_actor(),
                keyring(),
                identity,
                usage=form.usage.data or "",
                key_size=int(form.key_size.data or 0),
                days=int(form.days.data or 0),
                now=request_now(),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(
                f"New certificate generated: SHA-256 {colon_fingerprint(certificate.sha256)}. "
                "It is not in force until it is scheduled.",
                "success",
            )
            return redirect(url_for("staff.certificate_view", certificate_id=certificate.id))
    return _identity_page_with(identity, generate_form=form)


@bp.post("/identities/<id:identity_id>/csr")
@requires(Permission.MANAGE_PARTNERS)
def csr_create(identity_id: int) -> Rendered:
    """Make a key and a certificate signing request for a CA."""
    identity = directory.get_identity(db.session, identity_id)
    form = CsrForm(prefix="csr")
    if form.validate_on_submit():
        try:
            pending = certificates.create_csr(
                db.session,
                current_actor(),
                keyring(),
                identity,
                usage=form.usage.data or "",
                key_size=int(form.key_size.data or 0),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash(
                f"Certificate request #{pending.id} created. Download it, have your CA sign it, "
                "then upload the signed certificate here.",
                "success",
            )
            return redirect(url_for("staff.identity_view", identity_id=identity.id))
    return _identity_page_with(identity, csr_form=form)


@bp.get("/identities/<id:identity_id>/csr/<id:pending_id>.csr")
@requires(Permission.VIEW)
def csr_download(identity_id: int, pending_id: int) -> Response:
    """The certificate signing request as a PEM file."""
    identity = directory.get_identity(db.session, identity_id)
    pending = certificates.get_pending_key(db.session, identity, pending_id)
    response = Response(pending.csr_pem, mimetype="application/pkcs10")
    name = f"{identity.as2_id}-request-{pending.id}.csr"
    response.headers["Content-Disposition"] = _attachment(name)
    return response


@bp.post("/identities/<id:identity_id>/csr/<id:pending_id>/complete")
@requires(Permission.MANAGE_PARTNERS)
def csr_complete(identity_id: int, pending_id: int) -> Rendered:
    """Store the CA-signed certificate matching a pending key."""
    identity = directory.get_identity(db.session, identity_id)
    pending = certificates.get_pending_key(db.session, identity, pending_id)
    form = CompleteCsrForm(prefix="complete")
    if form.validate_on_submit():
        try:
            stored = certificates.complete_csr(
                db.session,
                current_actor(),
                keyring(),
                pending,
                signed_data=_read_upload(form.certificate.data),
                now=request_now(),
            )
        except ServiceError as error:
            # Shown at the top: a completed request is no longer listed on the page.
            return _identity_page_with(
                identity, page_errors=[f"Certificate request #{pending.id}: {error.message}"]
            )
        else:
            _flash_warnings(stored.report)
            flash("Signed certificate stored with its key.", "success")
            return redirect(url_for("staff.certificate_view", certificate_id=stored.certificate.id))
    return _identity_page_with(
        identity,
        page_errors=[f"Certificate request #{pending.id}: {e}" for e in form.certificate.errors],
    )


@bp.route("/identities/<id:identity_id>/certificates/import", methods=["GET", "POST"])
@requires(Permission.MANAGE_PARTNERS)
def certificate_import(identity_id: int) -> Rendered:
    """Import a certificate with its private key: a PEM pair or a PKCS#12 file."""
    identity = directory.get_identity(db.session, identity_id)
    pem_form = ImportPemForm(prefix="pem")
    p12_form = ImportPkcs12Form(prefix="p12")
    which = request.form.get("format") if request.method == "POST" else None
    form: FlaskForm | None = {"pem": pem_form, "p12": p12_form}.get(which or "")
    if request.method == "POST" and form is None:
        abort(400)
    if form is not None and form.validate_on_submit():
        try:
            stored = _import(identity, pem_form, p12_form, which)
        except ServiceError as error:
            attach_error(form, error)
        else:
            _flash_warnings(stored.report)
            flash(
                f"Certificate imported: SHA-256 {colon_fingerprint(stored.certificate.sha256)}. "
                "It is not in force until it is scheduled.",
                "success",
            )
            return redirect(url_for("staff.certificate_view", certificate_id=stored.certificate.id))
    status = 422 if form is not None else 200
    return render_template(
        "staff/certificate_import.html", identity=identity, pem_form=pem_form, p12_form=p12_form
    ), status


def _import(
    identity: Identity, pem_form: ImportPemForm, p12_form: ImportPkcs12Form, which: str | None
) -> certificates.Stored:
    if which == "pem":
        return certificates.import_pem(
            db.session,
            current_actor(),
            keyring(),
            identity,
            cert_data=_read_upload(pem_form.certificate.data),
            key_data=_read_upload(pem_form.private_key.data),
            passphrase=(pem_form.passphrase.data or "").encode() or None,
            usage=pem_form.usage.data or "",
            now=request_now(),
        )
    return certificates.import_pkcs12(
        db.session,
        current_actor(),
        keyring(),
        identity,
        data=_read_upload(p12_form.keystore.data),
        passphrase=(p12_form.passphrase.data or "").encode(),
        usage=p12_form.usage.data or "",
        now=request_now(),
    )


@bp.get("/certificates/<id:certificate_id>")
@requires(Permission.VIEW)
def certificate_view(certificate_id: int) -> Rendered:
    """Details and fingerprints of one certificate, downloads, keystore export."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    page, _ = render_certificate_page(certificate, now=request_now())
    return page


@bp.get("/certificates/<id:certificate_id>/download.<fmt>")
@requires(Permission.VIEW)
def certificate_download(certificate_id: int, fmt: str) -> Response:
    """The public certificate as .pem, .cer (DER) or .p7c (PKCS#7)."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    content, mimetype, name = certificates.public_file(certificate, fmt)
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = _attachment(name)
    return response


@bp.post("/certificates/<id:certificate_id>/keystore")
@requires(Permission.EXPORT_KEYS)
@requires_recent_login
def certificate_export(certificate_id: int) -> Rendered:
    """The private key, certificate and chain as a passphrase-protected PKCS#12."""
    certificate = certificates.get_certificate(db.session, certificate_id)
    if certificate.encrypted_private_key is None:
        abort(404)
    form = ExportKeystoreForm()
    if form.validate_on_submit():
        try:
            data = key_export.export_pkcs12(
                db.session,
                current_actor(),
                keyring(),
                certificate,
                passphrase=form.passphrase.data or "",
                legacy=bool(form.legacy.data),
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            response = Response(data, mimetype="application/x-pkcs12")
            name = f"{certificates.file_stem(certificate)}.p12"
            response.headers["Content-Disposition"] = _attachment(name)
            return response
    return render_certificate_page(certificate, now=request_now(), export_form=form, status=422)


def _identity_page_with(identity: Identity, **forms: object) -> tuple[str, int]:
    context = identity_page_context(identity)
    context.update(forms)
    history = audit.events_for(db.session, "identity", identity.id, page=1, per_page=20)
    return render_template(
        "staff/identity.html", identity=identity, history=history.items, **context
    ), 422


def _read_upload(storage: FileStorage | None) -> bytes:
    """Read an uploaded file, refusing more than the toolkit accepts."""
    if storage is None:
        raise ServiceError("Choose a file.")
    data = storage.read(certs.MAX_INPUT_BYTES + 1)
    if len(data) > certs.MAX_INPUT_BYTES:
        raise ServiceError(f"The file is larger than {certs.MAX_INPUT_BYTES // 1024} KiB.")
    return data


def _flash_warnings(report: certs.Report) -> None:
    for warning in report.warnings:
        flash(f"Warning: {warning.message}", "info")


def _attachment(name: str) -> str:
    # Server-chosen names only (AS2 IDs are printable ASCII without quotes).
    return f'attachment; filename="{name}"'
