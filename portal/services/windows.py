"""Change windows: proposed by either side, agreed by the other; the invitation to it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.domain.ics import window_invitation
from portal.models import Certificate, ChangeWindow, Partner, ShareLink
from portal.services import audit, emails
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError

# A change window is proposed for a moment in the future, at most this far ahead.
MAX_WINDOW_AHEAD = timedelta(days=730)


def latest_window(session: Session, partner: Partner) -> ChangeWindow | None:
    """The partner's current change window: the newest one not superseded.

    A proposal made after an agreement is newer than it, so both sides see it (the agreed
    one stays in force for the runner's purposes until the new one is accepted).
    """
    return session.scalar(
        select(ChangeWindow)
        .where(ChangeWindow.partner_id == partner.id, ChangeWindow.status != "superseded")
        .order_by(ChangeWindow.id.desc())
        .limit(1)
    )


def propose_window(
    session: Session,
    actor: Actor,
    link: ShareLink,
    *,
    starts_at: datetime,
    timezone: str,
    contact_name: str | None,
    contact_email: str | None,
    now: datetime,
) -> ChangeWindow:
    """Record the partner's proposed change window; earlier open proposals are superseded."""
    window = ChangeWindow(
        partner_id=link.partner_id,
        link_id=link.id,
        starts_at=starts_at,
        timezone=timezone,
        proposed_by="partner",
        contact_name=contact_name or None,
        contact_email=contact_email or None,
    )
    return _open_proposal(session, actor, window, now=now, who="Partner proposed")


def propose_window_as_staff(
    session: Session,
    actor: Actor,
    partner: Partner,
    *,
    starts_at: datetime,
    timezone: str,
    now: datetime,
) -> ChangeWindow:
    """Staff propose a change window to the partner; earlier open proposals are superseded."""
    window = ChangeWindow(
        partner_id=partner.id, starts_at=starts_at, timezone=timezone, proposed_by="staff"
    )
    _open_proposal(session, actor, window, now=now, who="Proposed")
    emails.queue(
        session, "window_proposed", recipients=partner.contact_emails,
        dedupe_key=f"window-proposed:{window.id}", window=window, partner=partner,
        language=partner.language,
    )  # fmt: skip
    return window


def accept_window(
    session: Session,
    actor: Actor,
    window: ChangeWindow,
    *,
    by_partner: bool,
    now: datetime,
    because: str | None = None,
) -> None:
    """Agree a proposed window: it becomes the partner's change window.

    BECAUSE, when given, says what agreed it (for the audit trail).
    """
    if window.status != "proposed":
        raise ServiceError("This window is no longer open for agreement.")
    if window.starts_at <= now:
        raise ServiceError("This window is in the past; propose a new one.")
    if by_partner == (window.proposed_by == "partner"):
        raise ServiceError("The other side accepts a proposal, not the side that made it.")
    session.execute(
        update(ChangeWindow)
        .where(ChangeWindow.partner_id == window.partner_id, ChangeWindow.status == "accepted")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    window.status = "accepted"
    audit.record(
        session,
        actor,
        "window.accepted",
        object_type="partner",
        object_id=window.partner_id,
        summary=f"Agreed the change window {window.starts_at:%Y-%m-%d %H:%M} UTC"
        + (f" by {because}" if because else ""),
        details={"window_id": window.id, **({"because": because} if because else {})},
    )


def agree_partner_window_at(
    session: Session,
    actor: Actor,
    partner_id: int,
    starts_at: datetime,
    *,
    now: datetime,
    because: str,
) -> ChangeWindow | None:
    """Agree the partner's open proposal when we chose exactly its time; None if there is none.

    Choosing the time the partner proposed is accepting it. Our own (staff) proposals stay
    proposed: only the partner can accept those.
    """
    window = session.scalar(
        select(ChangeWindow)
        .where(
            ChangeWindow.partner_id == partner_id,
            ChangeWindow.status == "proposed",
            ChangeWindow.proposed_by == "partner",
        )
        .order_by(ChangeWindow.id.desc())
        .limit(1)
    )
    if window is None or window.starts_at != starts_at or window.starts_at <= now:
        return None
    accept_window(session, actor, window, by_partner=False, now=now, because=because)
    return window


def agree_windows_at(
    session: Session,
    actor: Actor,
    partner_ids: list[int],
    certificate: Certificate,
    *,
    because: str,
    now: datetime,
) -> None:
    """Taking effect at a partner's proposed window agrees that window (for each partner)."""
    if certificate.activate_at is None:
        return
    for partner_id in partner_ids:
        agree_partner_window_at(
            session, actor, partner_id, certificate.activate_at, now=now, because=because
        )


def get_window(session: Session, partner_id: int, window_id: int) -> ChangeWindow:
    """One of the partner's change windows, or NotFoundError."""
    window = session.get(ChangeWindow, window_id)
    if window is None or window.partner_id != partner_id:
        raise NotFoundError("No such change window.")
    return window


def _open_proposal(
    session: Session, actor: Actor, window: ChangeWindow, *, now: datetime, who: str
) -> ChangeWindow:
    """Store a new proposal in place of the open ones, audited."""
    check_window_time(window.starts_at, now)
    _supersede_proposals(session, window.partner_id)
    session.add(window)
    session.flush()
    audit.record(
        session,
        actor,
        "window.proposed",
        object_type="partner",
        object_id=window.partner_id,
        summary=f"{who} the change window {window.starts_at:%Y-%m-%d %H:%M} UTC "
        f"({window.timezone})",
        details={
            "window_id": window.id,
            "link_id": window.link_id,
            "contact_name": window.contact_name,
        },
    )
    return window


def check_window_time(starts_at: datetime, now: datetime) -> None:
    """Refuse a window that is not in the future or lies more than MAX_WINDOW_AHEAD ahead."""
    if starts_at <= now:
        raise ServiceError("Propose a time in the future.", field="date")
    if starts_at > now + MAX_WINDOW_AHEAD:
        raise ServiceError("Propose a time within the next two years.", field="date")


def _supersede_proposals(session: Session, partner_id: int) -> None:
    session.execute(
        update(ChangeWindow)
        .where(ChangeWindow.partner_id == partner_id, ChangeWindow.status == "proposed")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )


def window_ics(
    window: ChangeWindow, partner: Partner, *, host: str, now: datetime, uid: str | None = None
) -> bytes:
    """The .ics invitation for a partner's change window.

    UID, when given, is the event's identity in the partner's calendar (a campaign's, so the
    page's file updates the entry its emails made); each new window is a later version of it.
    """
    return window_invitation(
        uid=uid or f"change-window-{window.id}@{host}",
        sequence=window.id if uid else 0,
        starts_at=window.starts_at,
        partner_zone=partner.timezone,
        our_name=partner.identity.organisation,
        our_as2_id=partner.identity.as2_id,
        partner_name=partner.name,
        partner_as2_id=partner.as2_id,
        status=window.status,
        now=now,
    )
