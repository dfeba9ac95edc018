"""Side effects of time passing, each performed exactly once: the steps; portal.jobs runs them.

Activation is derived from activate_at; nothing here activates anything. The runner
plans what has become due (inserting side effects under unique keys, so planning
twice is harmless), then performs them: claiming each with a compare-and-swap update
that portal.jobs commits in the same transaction as its outcome (an outbox message, a
revoked link). Several runners can work at once: on PostgreSQL they skip rows another
runner has locked; on SQLite the write lock serialises them. A runner killed halfway
loses only its uncommitted batch, which the next run performs.

Every function here only flushes; portal.jobs owns the commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, exists, literal, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.domain.certs import short_fingerprint
from portal.domain.roles import Permission, role_allows
from portal.domain.tokens import LinkSigner
from portal.domain.vocab import SubmissionStatus, WebhookEvent
from portal.models import (
    Acknowledgement,
    Certificate,
    ShareLink,
    SideEffect,
    Submission,
    User,
)
from portal.services import audit, drafts, emails, outbox, reminders, webhooks
from portal.services.actor import Actor

log = logging.getLogger(__name__)
ACTIVATED = "certificate.activated"
LINK_FULFILLED = "link.fulfilled"
PLAN_CHUNK = 1000  # rows per INSERT when planning
MAX_ATTEMPTS = 5  # after that an effect waits for an operator (its last_error says why)


def plan(
    session: Session, *, now: datetime, policy: reminders.Policy = reminders.DEFAULT_POLICY
) -> int:
    """Insert the side effects that have become due; existing keys are left alone.

    POLICY says which reminders are due (portal.services.reminders); a reminder skipped
    by it is inserted already done, so it is never sent. With policy.draft_requests, the
    60-day upload requests are planned too (portal.services.drafts).
    """
    planned = reminders.plan_reminders(session, now=now, offsets=policy.offsets)
    if policy.digest:
        planned += reminders.plan_digest(session, now=now, overlap=policy.overlap)
    if policy.draft_requests is not None:
        requests = drafts.plan_automatic(
            session, now=now, overlap=policy.overlap, policy=policy.draft_requests
        )
        planned += [reminders.Planned(k, drafts.AUTO_SEND, now, p) for k, p in requests]
    rows = [
        *_activations(session, now),
        *_fulfilled_links(session, now),
        *(
            _row(
                p.key,
                p.kind,
                p.due_at,
                p.payload,
                now,
                done_by=reminders.SKIPPED if p.done else None,
            )
            for p in planned
        ),
    ]
    if not rows:
        return 0
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = 0
    for start in range(0, len(rows), PLAN_CHUNK):  # within the databases' parameter limits
        statement = (
            insert(SideEffect)
            .values(rows[start : start + PLAN_CHUNK])
            .on_conflict_do_nothing(index_elements=["key"])
        )
        result = session.execute(statement)
        inserted += int(getattr(result, "rowcount", 0) or 0)
    return inserted


def _activations(session: Session, now: datetime) -> list[dict[str, Any]]:
    key = literal(f"{ACTIVATED}:") + cast(Certificate.id, String)
    candidates = session.execute(
        select(Certificate.id, Certificate.activate_at).where(
            Certificate.activate_at <= now,
            Certificate.withdrawn_at.is_(None),
            ~exists().where(SideEffect.key == key),
        )
    )
    return [
        _row(f"{ACTIVATED}:{cid}", ACTIVATED, due, {"certificate_id": cid}, now)
        for cid, due in candidates
    ]


def _fulfilled_links(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Links whose every purpose is done: their upload is in force, our certificate installed."""
    upload_done = exists().where(
        Submission.link_id == ShareLink.id,
        Submission.status == SubmissionStatus.APPROVED,
        Submission.certificate_id == Certificate.id,
        Certificate.activate_at <= now,
        Certificate.withdrawn_at.is_(None),
    )
    download_done = exists().where(
        Acknowledgement.partner_id == ShareLink.partner_id,
        Acknowledgement.created_at >= ShareLink.created_at,
    )
    key = literal(f"{LINK_FULFILLED}:") + ShareLink.id
    candidates = session.scalars(
        select(ShareLink.id).where(
            ShareLink.revoked_at.is_(None),
            ShareLink.expires_at > now,
            or_(~ShareLink.can_upload, upload_done),
            or_(~ShareLink.can_download, download_done),
            ~exists().where(SideEffect.key == key),
        )
    )
    return [
        _row(f"{LINK_FULFILLED}:{lid}", LINK_FULFILLED, now, {"link_id": lid}, now)
        for lid in candidates
    ]


def _row(
    key: str,
    kind: str,
    due: datetime,
    payload: dict[str, Any],
    now: datetime,
    *,
    done_by: str | None = None,
) -> dict[str, Any]:
    """An effect to insert; with DONE_BY, one planned already done (never performed)."""
    return {
        "key": key,
        "kind": kind,
        "due_at": due,
        "payload": payload,
        "attempts": 0,
        "created_at": now,
        "done_at": now if done_by else None,
        "done_by": done_by,
    }


def due_effects(
    session: Session, *, now: datetime, limit: int, skip: Collection[int] = ()
) -> list[SideEffect]:
    """Up to LIMIT effects due at NOW and not done, oldest first, none of the ids in SKIP.

    On PostgreSQL the rows are locked, skipping those another runner has locked.
    """
    query = (
        select(SideEffect)
        .where(
            SideEffect.done_at.is_(None),
            SideEffect.due_at <= now,
            SideEffect.attempts < MAX_ATTEMPTS,
            SideEffect.id.not_in(skip) if skip else true(),
        )
        .order_by(SideEffect.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def claim_effect(session: Session, effect: SideEffect, *, now: datetime, runner: str) -> bool:
    """Compare-and-swap: mark the effect done by RUNNER only if nobody has (True: ours)."""
    result = session.execute(
        update(SideEffect)
        .where(SideEffect.id == effect.id, SideEffect.done_at.is_(None))
        .values(done_at=now, done_by=runner[:200], attempts=SideEffect.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def perform_effect(
    session: Session, effect: SideEffect, *, now: datetime, signer: LinkSigner | None = None
) -> bool:
    """Perform a claimed effect in a savepoint; a failure puts it back with its error (False).

    SIGNER signs the links some effects create (an automatic upload request); a runner
    given none fails those, which later runs retry.
    """
    try:
        with session.begin_nested():
            if effect.kind in SIGNING_PERFORMERS:
                if signer is None:
                    raise RuntimeError("this runner has no link signer to create links with")
                SIGNING_PERFORMERS[effect.kind](session, effect, now, signer)
            else:
                PERFORMERS[effect.kind](session, effect, now)
    except Exception as error:  # one bad effect must not stop the others
        log.exception("side effect %s failed", effect.key)
        _release(session, effect, error)
        return False
    return True


def _release(session: Session, effect: SideEffect, error: Exception) -> None:
    """Put a failed effect back for a later run, with the error for the operator."""
    session.execute(
        update(SideEffect)
        .where(SideEffect.id == effect.id)
        .values(done_at=None, done_by=None, last_error=f"{type(error).__name__}: {error}"[:2000])
        .execution_options(synchronize_session=False)
    )


def _notify_activation(session: Session, effect: SideEffect, now: datetime) -> None:
    certificate = session.get(Certificate, effect.payload["certificate_id"])
    if certificate is None or certificate.withdrawn_at is not None:
        return  # withdrawn after planning: nothing to announce
    staff = [
        user.email
        for user in session.scalars(select(User).where(User.is_enabled.is_(True)))
        if role_allows(user.role, Permission.MANAGE_PARTNERS)
        or role_allows(user.role, Permission.APPROVE)
    ]
    if certificate.partner is not None:
        partners = [certificate.partner]
    else:
        identity = certificate.identity
        assert identity is not None  # noqa: S101  (one owner: database constraint)
        partners = list(identity.partners)
    email = emails.render("certificate_in_force", certificate=certificate)
    outbox.queue_email(
        session, recipients=staff, subject=email.subject, body=email.body, html=email.html,
        dedupe_key=f"{effect.key}:staff",
    )  # fmt: skip
    # Partners read the notice in their own language: one message per language.
    emails.queue_by_language(
        session, "certificate_in_force", partners, dedupe_key=f"{effect.key}:partner",
        certificate=certificate,
    )  # fmt: skip
    audit.record(
        session,
        Actor("scheduler"),
        "certificate.activation_noticed",
        object_type="identity" if certificate.identity_id else "partner",
        object_id=certificate.identity_id or certificate.partner_id,
        summary=f"Announced that certificate {short_fingerprint(certificate.sha256)} "
        f"is in force since {certificate.activate_at:%Y-%m-%d %H:%M} UTC",
        details={"certificate_id": certificate.id, "side_effect": effect.key},
    )
    webhooks.emit(
        session, WebhookEvent.CERTIFICATE_ACTIVATED, webhooks.certificate_event(certificate),
        now=now, occurred_at=certificate.activate_at,
    )  # fmt: skip


def _revoke_fulfilled_link(session: Session, effect: SideEffect, now: datetime) -> None:
    link = session.get(ShareLink, effect.payload["link_id"])
    if link is None or link.revoked_at is not None:
        return
    link.revoked_at = now
    audit.record(
        session,
        Actor("scheduler"),
        "link.revoked",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Revoked link {link.id}: its purpose is fulfilled",
        details={"link_id": link.id, "side_effect": effect.key},
    )


PERFORMERS: dict[str, Callable[[Session, SideEffect, datetime], None]] = {
    ACTIVATED: _notify_activation,
    LINK_FULFILLED: _revoke_fulfilled_link,
    reminders.REMINDER: reminders.remind,
    reminders.DIGEST: reminders.send_digest,
}
# Effects that create links, so need the link signer the runner's entry point gives.
SIGNING_PERFORMERS: dict[str, Callable[[Session, SideEffect, datetime, LinkSigner], None]] = {
    drafts.AUTO_SEND: drafts.send_automatically,
}
