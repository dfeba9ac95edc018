"""What the partner's link page shows besides its forms: who asks, our certificates, the
steps and their state (portal.domain.partner_progress decides them), whom to write to.

Built here for every answer that shows the page: the GET, and each refused form.
"""

from __future__ import annotations

from datetime import datetime

from flask import request, url_for

from portal.domain import partner_progress
from portal.domain.partner_progress import Situation, UploadState, WindowState
from portal.domain.vocab import SubmissionStatus, WindowProposer, WindowStatus
from portal.extensions import db
from portal.models import Acknowledgement, ChangeWindow, Partner, ShareLink, Submission
from portal.services import acknowledgements, links, windows
from portal.settings import settings
from portal.web import urls
from portal.web.partner import zones


def contacts_of(link: ShareLink | None) -> list[str]:
    """The addresses a partner may write to: never a placeholder such as portal@localhost."""
    identity_contact = link.partner.identity.contact_email if link is not None else None
    return partner_progress.partner_contacts(settings().contact_email, identity_contact)


def link_page_context(
    link: ShareLink, token: str, now: datetime, loaded: links.PageLoad | None
) -> dict[str, object]:
    """What the link page shows besides its forms: who asks, our certificates, the state.

    LOADED carries the window and acknowledgement read with the link (a GET); a form's
    answer reads them afresh, after what it changed.
    """
    partner = link.partner
    ours = (
        links.certificates_for_partner(
            db.session, partner, now=now, overlap=settings().certificate_overlap
        )
        if link.can_download
        else []
    )
    partner_submissions = links.submissions_of_partner(db.session, partner)
    window, acknowledgement = _window_and_acknowledgement(partner, loaded)
    window = of_this_exchange(window, link)
    received = request.args.get("received", type=int)
    return {
        "link": link,
        "token": token,
        "partner": partner,
        "identity": partner.identity,
        "ours": ours,
        "submissions": partner_submissions,
        "window": window,
        "acknowledgement": acknowledgement,
        "received": next((s for s in partner_submissions if s.id == received), None),
        "acknowledged": request.args.get("acknowledged") == "1",
        "uploads_left": max(0, link.max_uploads - link.uploads_used),
        "upload_url": url_for("partner.machine_upload", token=token, _external=False),
        "feed_url": url_for("partner.certificates_feed", token=token, _external=False),
        "base_url": urls.base_url(),
        "contacts": contacts_of(link),
        "zone": partner.timezone,
        "zones": zones.suggested_zones(partner.timezone),
        "zones_url": url_for("partner.time_zones", v=zones.all_zones_json()[1]),
        "now": now,
        **_progress_context(
            link,
            newest_ours=ours[-1].certificate.id if ours else None,
            sent=partner_submissions,
            window=window,
            acknowledgement=acknowledgement,
        ),
    }


def of_this_exchange(window: ChangeWindow | None, link: ShareLink) -> ChangeWindow | None:
    """WINDOW when it belongs to this link's exchange, else None.

    The latest window may be a switch agreed long ago, in an earlier exchange: shown as
    agreed, it would mark this link's window step done and offer no way to propose a new
    time. A window counts when it starts no earlier than the link was made.
    """
    if window is None or window.starts_at < link.created_at:
        return None
    return window


def _window_and_acknowledgement(
    partner: Partner, loaded: links.PageLoad | None
) -> tuple[ChangeWindow | None, Acknowledgement | None]:
    """The latest window and acknowledgement: as read with the link, else read now."""
    if loaded is not None:
        return loaded.window, loaded.acknowledgement
    return (
        windows.latest_window(db.session, partner),
        acknowledgements.latest_acknowledgement(db.session, partner),
    )


def _progress_context(
    link: ShareLink,
    *,
    newest_ours: int | None,
    sent: list[Submission],
    window: ChangeWindow | None,
    acknowledgement: Acknowledgement | None,
) -> dict[str, object]:
    """The steps and their states, and the partner's certificate the page summarises.

    A submission counts for this link when it still waits for review or came since the
    link was made (an approval from an earlier exchange does not do this one's step). An
    acknowledgement counts when it names the newest certificate we show (or we show none).
    """
    relevant = [
        s for s in sent if s.status == SubmissionStatus.RECEIVED or s.created_at >= link.created_at
    ]
    upload = partner_progress.upload_state([s.status for s in relevant])
    acknowledged = acknowledgement is not None and acknowledgement.certificate_id == newest_ours
    situation = Situation(
        # With nothing of ours to offer yet, there is nothing to download or install.
        can_download=link.can_download and newest_ours is not None,
        can_upload=link.can_upload,
        # Confirming our newest certificate means they have it, whichever way it came
        # (an earlier link, the JSON feed): downloads are counted per link.
        downloaded=link.download_count > 0 or acknowledged,
        upload=upload,
        window=_window_state(window),
        acknowledged=acknowledged,
    )
    theirs = next(
        (s for s in relevant if s.status in (SubmissionStatus.RECEIVED, SubmissionStatus.APPROVED)),
        None,
    )
    steps = partner_progress.progress(situation)
    return {
        "progress": steps,
        "step_states": {step.key.value: step.state.value for step in steps.steps},
        # Headings carry the step's number in the list, so an upload-only link reads 1, 2.
        "step_numbers": {step.key.value: n for n, step in enumerate(steps.steps, start=1)},
        "upload_state": upload,
        "window_state": situation.window,
        "theirs": theirs,
        "rejected": relevant[0] if upload is UploadState.REJECTED and relevant else None,
    }


def _window_state(window: ChangeWindow | None) -> WindowState:
    """The latest window from the partner's side."""
    if window is None:
        return WindowState.NONE
    if window.status == WindowStatus.ACCEPTED:
        return WindowState.ACCEPTED
    if window.proposed_by == WindowProposer.STAFF:
        return WindowState.PROPOSED_BY_US
    return WindowState.PROPOSED_BY_THEM
