"""Page builders shared by the staff route modules: the partner, identity and certificate pages.

Route modules import from here (and from forms and blueprint), never from one another.
Builders take NOW from the route that calls them, so a test's clock reaches every page.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, render_template, request

from portal.domain import certs
from portal.domain.vocab import usages_served
from portal.extensions import db, link_signer
from portal.models import AuditEvent, Certificate, Identity, Partner, ShareLink
from portal.services import (
    acknowledgements,
    audit,
    certificates,
    directory,
    inforce,
    links,
    windows,
)
from portal.settings import settings
from portal.web import urls
from portal.web.staff.forms import (
    CompleteCsrForm,
    ConfirmForm,
    CsrForm,
    ExportKeystoreForm,
    GenerateCertificateForm,
    LinkForm,
    ReasonForm,
    StaffUploadForm,
    WhenForm,
)

Rendered = str | tuple[str, int] | Response

IDENTITY_PARTNERS_PER_PAGE = 50
PARTNER_LINKS_PER_PAGE = 20


def cursor_args(prefix: str = "") -> dict[str, str | None]:
    """The keyset cursors of a list from the query string (`after`, `before`, optionally prefixed).

    Services check them: an edited or garbage cursor is a 400, never a 500.
    """
    return {
        "after": request.args.get(f"{prefix}after") or None,
        "before": request.args.get(f"{prefix}before") or None,
    }


# Partner page -------------------------------------------------------------------------


def render_partner_page(
    partner: Partner,
    *,
    now: datetime,
    link_form: LinkForm | None = None,
    window_form: WhenForm | None = None,
    upload_form: StaffUploadForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The partner page, optionally with a refused link, window or upload form shown again."""
    link_page = links.browse_links(
        db.session, partner, **cursor_args("links_"), per_page=PARTNER_LINKS_PER_PAGE
    )
    history = audit.latest_for(db.session, "partner", partner.id, limit=30)
    return render_template(
        "staff/partner.html",
        partner=partner,
        history=history,
        history_names=audit.events_names(db.session, history),
        certificates=certificates.partner_certificates(db.session, partner),
        link_rows=link_rows(link_page.items, now),
        link_page=link_page,
        link_form=link_form or new_link_form(),
        confirm_form=ConfirmForm(),
        submissions=links.submissions_of_partner(db.session, partner),
        acknowledgement=acknowledgements.latest_acknowledgement(db.session, partner),
        window=windows.latest_window(db.session, partner),
        window_form=window_form or WhenForm(prefix="window", timezone=partner.timezone),
        upload_form=upload_form or StaffUploadForm(prefix="upload"),
    ), status


def link_rows(shown: list[ShareLink], now: datetime) -> list[dict[str, object]]:
    """Links with their state and URL, for the partner page."""
    base_url = urls.base_url()
    return [
        {
            "link": link,
            "state": links.link_state(link, now).value,
            "url": links.link_url(base_url, link_signer().sign(link.id)),
        }
        for link in shown
    ]


def new_link_form() -> LinkForm:
    """The create-link form with the configured defaults."""
    return LinkForm(
        prefix="link",
        expires=settings().link_default_expiry,
        max_uploads=settings().link_default_max_uploads,
    )


# Identity page ------------------------------------------------------------------------


def identity_page_context(identity: Identity) -> dict[str, object]:
    """What the identity page shows: certificates, empty action forms, a page of partners."""
    return {
        **identity_partners_context(identity),
        "certificates": certificates.identity_certificates(db.session, identity),
        "open_csrs": certificates.open_csrs(db.session, identity),
        "generate_form": GenerateCertificateForm(prefix="generate"),
        "csr_form": CsrForm(prefix="csr"),
        "complete_form": CompleteCsrForm(prefix="complete"),
    }


def identity_partners_context(identity: Identity) -> dict[str, object]:
    """One page of the identity's partners by name, filtered by the `q` search box."""
    query = request.args.get("q", "")[:200]
    page = directory.browse_partners(
        db.session,
        query=query,
        identity_id=identity.id,
        **cursor_args(),
        per_page=IDENTITY_PARTNERS_PER_PAGE,
        with_details=False,
    )
    return {"partner_page": page, "q": query}


# Certificate page ---------------------------------------------------------------------


def render_certificate_page(
    certificate: Certificate, *, now: datetime, status: int = 200, **forms: object
) -> tuple[str, int]:
    """The certificate page, with any refused form shown again."""
    defaults: dict[str, object] = {
        "export_form": ExportKeystoreForm(),
        "schedule_form": WhenForm(prefix="schedule"),
        "reschedule_form": WhenForm(prefix="reschedule"),
        "cancel_form": ReasonForm(prefix="cancel"),
        "rollback_form": ReasonForm(prefix="rollback"),
        "confirm_form": ConfirmForm(),
    }
    defaults.update(forms)
    history = _certificate_history(certificate)
    return render_template(
        "staff/certificate.html",
        certificate=certificate,
        details=certs.certificate_info(certificate.der),
        chain=certificates.chain_details(certificate.chain_pem),
        history=history,
        history_names=audit.events_names(db.session, history),
        now=now,
        **scheduling_context(certificate, now),
        **defaults,
    ), status


def scheduling_context(certificate: Certificate, now: datetime) -> dict[str, object]:
    """What the certificate page needs to show its schedule and the actions on it."""
    owner = inforce.Owner.of(certificate)
    states = [
        inforce.owner_state(
            db.session, owner, usage, now=now, overlap=settings().certificate_overlap
        )
        for usage in usages_served(certificate.usage)
    ]
    return {
        "is_active": all(state.active is certificate for state in states),
        "has_previous": any(state.previous is not None for state in states),
        "is_future": certificate.activate_at is not None and certificate.activate_at > now,
        "agreed_window": agreed_window(certificate),
    }


def agreed_window(certificate: Certificate) -> datetime | None:
    """The earliest change window agreed with a partner of the certificate's identity."""
    if certificate.identity is None:
        return None
    latest = [
        windows.latest_window(db.session, partner) for partner in certificate.identity.partners
    ]
    agreed = [w.starts_at for w in latest if w is not None and w.status == "accepted"]
    return min(agreed) if agreed else None


def _certificate_history(certificate: Certificate) -> list[AuditEvent]:
    """The owner's audit events that concern this certificate."""
    owner_type = "identity" if certificate.identity_id else "partner"
    owner_id = certificate.identity_id or certificate.partner_id
    events = audit.latest_for(db.session, owner_type, owner_id, limit=200)
    return [event for event in events if event.details.get("certificate_id") == certificate.id]
