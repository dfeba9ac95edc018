"""The runner's loops and their transactions, for `portal run-due` and `portal scheduler`.

Services only flush; this module alone decides when their work is committed:

- planning (side effects inserted under unique keys) commits on its own, first;
- due side effects are claimed (compare-and-swap) and performed in batches of BATCH,
  each batch one transaction, so a claim commits together with its outcome (an outbox
  message, a revoked link), and a runner killed halfway loses only its uncommitted
  batch, which the next run performs;
- the outbox is read in a short transaction of its own; then each message gets its own
  transaction: claimed before it is sent, committed right after (or its failure is
  recorded and committed), so two runners never both send it, and a runner dying
  between the SMTP server's acceptance and the commit sends it again next run: at
  least once, never silently lost;
- webhook deliveries too get a transaction each, but a short one: the claim (a lease
  taken with a compare-and-swap) is committed before the POST and the outcome after it,
  so no transaction or SQLite lock is held while a receiver is slow; two runners never
  post the same delivery, and one a runner posted just before dying is posted again
  once its lease has run out (at least once, never silently lost);
- the export directory (PORTAL_EXPORT_DIR) is brought up to the run's time in a
  transaction of its own (its audit event, when keys were written, commits with it);
  its failure is reported and retried next run, and never stops the other steps;
- whatever a run leaves open is rolled back at its end.

This is a face, like portal.cli and portal.web: it may import services; services never
import it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from portal import exporter
from portal.domain.keys import KeyRing
from portal.domain.tokens import LinkSigner, parse_duration
from portal.services import drafts, links, outbox, reminders, webhook_http, webhooks
from portal.services import runner as effects
from portal.services.actor import Actor
from portal.services.mailer import Mailer
from portal.settings import Settings

BATCH = 100  # side effects per transaction
OUTBOX_BATCH = 500  # outbox messages read at once (each is sent in its own transaction)
NO_BASE_URL = (
    "PORTAL_BASE_URL is not set, so links in emails would point at an address partners "
    "cannot reach; emails wait in the outbox until it is set"
)

# Sends (recipients, subject, text body, HTML body), and attachments=[outbox.Attachment]
# for a message that has some; answers the recipients the server refused, if any.
Send = Callable[..., Mapping[str, tuple[int, bytes]] | None]
Post = Callable[[str, bytes, Mapping[str, str]], webhook_http.Answer]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What one run did."""

    planned: int
    performed: int
    failed: int
    sent: int = 0
    unsent: int = 0
    last_error: str | None = None  # why the last email that could not be sent failed
    refused: int = 0  # emails sent, but refused by the server for some recipients
    refused_error: str | None = None  # the last such email's last_error ("refused: ...")
    email_off: bool = False  # no mail relay configured: nothing was sent
    waiting: int = 0  # emails left in the outbox when email is off
    posted: int = 0  # webhook deliveries that landed
    unposted: int = 0  # webhook attempts that failed (each is retried later)
    webhook_error: str | None = None  # why the last failed webhook attempt failed
    export: exporter.Outcome | None = None  # what the export directory did (when set)
    export_error: str | None = None  # why the export directory could not be written


@dataclass(frozen=True)
class Delivery:
    """What one pass over the outbox did."""

    sent: int
    failed: int
    last_error: str | None = None  # why the last failed message failed
    refused: int = 0  # of those sent, how many the server refused for some recipients
    refused_error: str | None = None  # the last one's last_error ("refused: ...")


@dataclass(frozen=True)
class PartlyRefused:
    """A message sent, refused for some recipients: REASON names them (its last_error)."""

    reason: str


def run_once(
    session: Session,
    settings: Settings,
    signer: LinkSigner,
    keyring: KeyRing,
    *,
    now: datetime,
) -> RunResult:
    """Perform the side effects due at NOW, refresh the export directory, post due webhooks,
    then send the outbox's emails.

    SIGNER, the app's link signer (PORTAL_LINK_SIGNING_KEYS), makes a link's token from its
    id, for the emails' URLs and the links automatic upload requests create; KEYRING opens
    webhook secrets and our keys when the export holds them; SETTINGS give the mail relay,
    base URL, webhook timeout, export directory and what the runner reminds of.
    """
    name = f"{socket.gethostname()}:{os.getpid()}"
    try:
        result = run_due(
            session, now=now, runner=name, policy=reminder_policy(settings), signer=signer
        )
        post = partial(
            webhook_http.post,
            timeout=settings.webhook_timeout,
            allow_private=settings.webhook_allow_private,
        )
        posted = deliver_webhooks(session, post, keyring, now=now, runner=name)
        result = replace(
            result, posted=posted.sent, unposted=posted.failed, webhook_error=posted.last_error
        )
        if settings.export_dir is not None:
            outcome, failure = refresh_export(session, settings, keyring, now=now)
            result = replace(result, export=outcome, export_error=failure)
        if settings.smtp is None:
            return replace(result, email_off=True, waiting=outbox.count_unsent(session))
        base_url = settings.base_url
        if not base_url:
            # Links in emails would point at an address partners cannot reach: keep them.
            return replace(result, unsent=outbox.count_unsent(session), last_error=NO_BASE_URL)
        mailer = Mailer(settings.smtp)
        try:
            delivery = deliver_outbox(
                session,
                mailer.send,
                lambda link_id: links.link_url(base_url, signer.sign(link_id)),
                now=now,
            )
        finally:
            mailer.close()
        return replace(
            result, sent=delivery.sent, unsent=delivery.failed, last_error=delivery.last_error,
            refused=delivery.refused, refused_error=delivery.refused_error,
        )  # fmt: skip
    finally:
        session.rollback()


def refresh_export(
    session: Session, settings: Settings, keyring: KeyRing | None, *, now: datetime
) -> tuple[exporter.Outcome | None, str | None]:
    """Bring PORTAL_EXPORT_DIR up to NOW and commit: (outcome, None), or (None, why it failed).

    A failure is logged and returned, never raised: the other steps go on, the next run
    tries again.
    """
    assert settings.export_dir is not None  # noqa: S101  (the caller checked)
    try:
        outcome = exporter.refresh(
            session,
            keyring,
            Path(settings.export_dir),
            at=now,
            overlap=settings.certificate_overlap,
            passphrase=settings.export_key_passphrase,
            actor=Actor("scheduler"),
            keep_newer=True,
        )
        session.commit()
    except Exception as error:  # any failure: reported, and retried by the next run
        session.rollback()
        reason = exporter.failure_text(error)
        log.error("The export directory %s was not refreshed: %s", settings.export_dir, reason)
        return None, reason
    return outcome, None


def reminder_policy(settings: Settings) -> reminders.Policy:
    """The reminders (and automatic upload requests) SETTINGS ask for."""
    auto = None
    if settings.draft_requests_auto_send:
        # The link the dashboard's button makes: the default lifetime and uploads.
        auto = drafts.AutoSend(
            lifetime=parse_duration(settings.link_default_expiry),
            max_uploads=settings.link_default_max_uploads,
        )
    return reminders.Policy(
        offsets=settings.reminder_offsets,
        digest=settings.digest_enabled,
        overlap=settings.certificate_overlap,
        draft_requests=auto,
    )


def run_due(
    session: Session,
    *,
    now: datetime,
    runner: str,
    batch: int = BATCH,
    policy: reminders.Policy = reminders.DEFAULT_POLICY,
    signer: LinkSigner | None = None,
) -> RunResult:
    """Plan and perform every side effect due at NOW; commits the plan, then once per batch.

    SIGNER signs the links effects create (automatic upload requests need it).
    """
    planned = effects.plan(session, now=now, policy=policy)
    session.commit()
    performed = 0
    failed: set[int] = set()
    while True:
        done, looked_at = perform_batch(
            session, now=now, runner=runner, batch=batch, skip=failed, signer=signer
        )
        session.commit()
        performed += done
        if looked_at < batch:
            return RunResult(planned, performed, len(failed))


def perform_batch(
    session: Session,
    *,
    now: datetime,
    runner: str,
    batch: int,
    skip: set[int],
    signer: LinkSigner | None = None,
) -> tuple[int, int]:
    """Claim and perform up to BATCH due effects, uncommitted; returns (performed, looked at).

    The ids of effects that failed are added to SKIP, so the same run does not retry them.
    """
    due = effects.due_effects(session, now=now, limit=batch, skip=skip)
    done = 0
    for effect in due:
        if not effects.claim_effect(session, effect, now=now, runner=runner):
            continue  # another runner did it first
        if effects.perform_effect(session, effect, now=now, signer=signer):
            done += 1
        else:
            skip.add(effect.id)
    return done, len(due)


def deliver_outbox(
    session: Session,
    send: Send,
    url_for_link: Callable[[str], str],
    *,
    now: datetime,
    batch: int = OUTBOX_BATCH,
) -> Delivery:
    """Send queued emails; commits after each message.

    A message's link URL is made by URL_FOR_LINK from its link_id column alone, never
    from its text. A message is claimed with a compare-and-swap on sent_at before it is
    sent and committed right after, so two runners never send it both. If a runner dies
    between the SMTP server accepting and the commit, the message is sent again on the
    next run: delivery is at least once, never silently lost. A failed message is tried
    again by a run after its backoff (1, 2, 4 ... minutes from NOW), not at every run.
    """
    return _drain(
        session,
        lambda tried: outbox.unsent_ids(session, limit=batch, now=now, skip=tried),
        lambda message_id: deliver_one(session, send, url_for_link, message_id, now=now),
    )


def _drain(
    session: Session,
    next_ids: Callable[[set[int]], list[int]],
    deliver: Callable[[int], bool | str | PartlyRefused | None],
) -> Delivery:
    """Deliver batches of NEXT_IDS (skipping those tried) until none is left; tally outcomes.

    DELIVER answers True (delivered), PartlyRefused (delivered, some recipients refused), a
    reason (failed, retried later) or None (another runner had it). The read that picks a
    batch is committed before delivering, so each delivery runs in its own short transactions.
    """
    sent = failed = refused = 0
    last_error: str | None = None
    refused_error: str | None = None
    tried: set[int] = set()
    while True:
        ids = next_ids(tried)
        session.commit()
        if not ids:
            return Delivery(sent, failed, last_error, refused, refused_error)
        tried.update(ids)
        for item_id in ids:
            outcome = deliver(item_id)
            if outcome is True:
                sent += 1
            elif isinstance(outcome, PartlyRefused):
                sent += 1
                refused += 1
                refused_error = outcome.reason
            elif isinstance(outcome, str):
                failed += 1
                last_error = outcome


def deliver_one(
    session: Session,
    send: Send,
    url_for_link: Callable[[str], str],
    message_id: int,
    *,
    now: datetime,
) -> Literal[True] | PartlyRefused | str | None:
    """Claim, send and record one message: True sent, its error if failed, None taken by another.

    Sent to some recipients and refused for others, it is sent (never again to those who
    have it) and its last_error names the refused ones, for the Outbox page: PartlyRefused.
    """
    message = outbox.claim_message(session, message_id, now=now)
    if message is None:
        session.rollback()
        return None
    try:
        url = url_for_link(message.link_id) if message.link_id is not None else None
        parts = (
            message.recipients,
            message.subject,
            outbox.render_body(message.body, url),
            outbox.render_html(message, url),
        )
        attachments = outbox.attachments_of(message)
        # Only a message with attachments passes them: a sender may take just the four parts.
        refused = send(*parts, attachments=attachments) if attachments else send(*parts)
    except Exception as error:  # any failure is recorded: one bad message must not block others
        reason = outbox.record_failure(session, message, error, now=now)
        session.commit()
        return reason
    if refused:
        reason = outbox.record_refused(session, message_id, refused)
        log.warning("Email #%s went out, but %s", message_id, reason)
        session.commit()
        return PartlyRefused(reason)
    session.commit()
    return True


def deliver_webhooks(
    session: Session,
    post: Post,
    keyring: KeyRing,
    *,
    now: datetime,
    runner: str,
    batch: int = OUTBOX_BATCH,
    stamp: Callable[[], int] = lambda: int(time.time()),
) -> Delivery:
    """Post the webhook deliveries due at NOW, one short transaction before and after each.

    STAMP gives the signature's timestamp, the moment of sending (a receiver compares it
    with its own clock), while NOW decides what is due and when a failure is retried.
    """
    return _drain(
        session,
        lambda tried: webhooks.due_ids(session, now=now, limit=batch, skip=tried),
        lambda delivery_id: deliver_webhook(
            session, post, keyring, delivery_id, now=now, runner=runner, stamp=stamp
        ),
    )


def deliver_webhook(
    session: Session,
    post: Post,
    keyring: KeyRing,
    delivery_id: int,
    *,
    now: datetime,
    runner: str,
    stamp: Callable[[], int],
) -> Literal[True] | str | None:
    """Claim, post and record one delivery: True landed, its error if not, None taken by another."""
    # The lease runs from the moment of claiming, not from the start of a run that may have
    # spent minutes on slow receivers: else another runner could take it while we post.
    claimed_at = max(now, datetime.fromtimestamp(stamp(), UTC))
    attempt = webhooks.claim(session, delivery_id, now=now, runner=runner, lease_from=claimed_at)
    if attempt is None:
        session.rollback()
        return None
    session.commit()  # the lease is ours: post without holding a transaction
    try:
        headers = webhooks.signed_headers(keyring, attempt, timestamp=stamp())
        answer = post(attempt.url, attempt.payload, headers)
    except Exception as error:  # any failure is recorded: one bad receiver must not stop others
        reason = webhooks.record_failure(
            session, attempt, error=f"{type(error).__name__}: {error}", status=None, now=now
        )
        session.commit()
        return reason
    if answer.ok:
        webhooks.record_delivered(session, attempt, status=answer.status, now=now)
        session.commit()
        return True
    reason = webhooks.record_failure(
        session, attempt, error=f"HTTP {answer.status}: {answer.text}", status=answer.status,
        now=now,
    )  # fmt: skip
    session.commit()
    return reason
