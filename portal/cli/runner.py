"""`portal run-due` and `portal scheduler`: what portal.jobs did, said on the terminal."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError

from portal import jobs
from portal.cli.export import export_line
from portal.clock import command_now
from portal.config import EMAIL_OFF
from portal.extensions import db, keyring, link_signer
from portal.services.outbox import REFUSED
from portal.settings import settings


@click.command("run-due")
@with_appcontext
def run_due_command() -> None:
    """Perform, once, every side effect whose time has come (safe to run anywhere, any time).

    With PORTAL_EXPORT_DIR set, the export directory is brought up to now as well.
    """
    result = _run_once(command_now())
    effects = (
        f"Planned {result.planned}, performed {result.performed}, failed {result.failed} "
        "side effects"
    )
    if result.email_off:
        click.echo(f"{effects}.")
        click.echo(f"{email_off_line(result.waiting)}.")
    else:
        click.echo(f"{effects}; sent {result.sent} emails, {result.unsent} could not be sent.")
    if result.posted or result.unposted:
        click.echo(webhooks_line(result) + ".")
    if result.export is not None:
        click.echo(export_line(result.export))
    if result.unsent:
        click.echo(f"Last error: {one_line(result.last_error)}", err=True)
    if result.refused:
        click.echo(refused_line(result), err=True)
    if result.unposted:
        click.echo(f"Last webhook error: {one_line(result.webhook_error)}", err=True)
    if result.export_error is not None:
        click.echo(f"Export directory not written: {one_line(result.export_error)}", err=True)
    if (
        result.failed
        or result.unsent
        or result.refused
        or result.unposted
        or result.export_error is not None
    ):
        sys.exit(1)


@click.command("scheduler")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(1, 86_400))
@click.option(
    "--iterations", default=0, type=click.IntRange(0), help="Stop after N runs (0: never)."
)
@with_appcontext
def scheduler_command(interval: int, iterations: int) -> None:
    """Run run-due every --interval seconds until stopped (Ctrl+C or SIGTERM)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    count = 0
    waiting_told: int | None = None  # what was last said about a switched-off outbox
    while not stop.is_set():
        now = command_now()  # each tick works at one time
        try:
            result = _run_once(now)
        except OperationalError as error:
            # A database restart must not end the loop; the next tick retries.
            click.echo(f"run-due failed, retrying in {interval}s: {type(error).__name__}", err=True)
        else:
            stamp = f"{now:%Y-%m-%dT%H:%M:%SZ}"
            if result.planned or result.performed or result.failed or result.sent or result.unsent:
                click.echo(
                    f"{stamp} planned {result.planned}, "
                    f"performed {result.performed}, failed {result.failed}, "
                    f"sent {result.sent}, unsent {result.unsent}"
                )
            if result.posted or result.unposted:
                click.echo(f"{stamp} {webhooks_line(result)}")
            if result.unsent:
                click.echo(f"{stamp} last error: {one_line(result.last_error)}", err=True)
            if result.refused:
                click.echo(f"{stamp} {refused_line(result)}", err=True)
            if result.unposted:
                click.echo(
                    f"{stamp} last webhook error: {one_line(result.webhook_error)}", err=True
                )
            if result.export is not None and result.export.written:
                click.echo(f"{stamp} {export_line(result.export)}")
            if result.export_error is not None:
                message = one_line(result.export_error)
                click.echo(f"{stamp} export directory not written: {message}", err=True)
            # Said once, and again when the number changes: not every tick.
            if result.email_off and result.waiting != waiting_told:
                click.echo(f"{stamp} {email_off_line(result.waiting)}")
            waiting_told = result.waiting if result.email_off else None
        count += 1
        if iterations and count >= iterations:
            break
        stop.wait(interval)


def email_off_line(waiting: int) -> str:
    """What to say when no mail relay is configured."""
    messages = "1 message waits" if waiting == 1 else f"{waiting} messages wait"
    return f"{EMAIL_OFF}: {messages} in the outbox"


def refused_line(result: jobs.RunResult) -> str:
    """What to say of emails the server took for some recipients and refused for others."""
    count = "1 message" if result.refused == 1 else f"{result.refused} messages"
    last = one_line(result.refused_error).removeprefix(REFUSED)
    if result.refused == 1:
        return f"{count} partly refused: {last} (the other recipients have it)"
    return f"{count} partly refused; the last: {last} (the other recipients have them)"


def webhooks_line(result: jobs.RunResult) -> str:
    """What a run did with webhooks."""
    return (
        f"Posted {result.posted} webhook deliveries, {result.unposted} failed "
        "(retried later with backoff)"
    )


def one_line(text: str | None) -> str:
    """An error as one line."""
    return " ".join((text or "unknown error").split())


def _run_once(now: datetime) -> jobs.RunResult:
    """One run of portal.jobs at NOW with this app's settings, session and link signer."""
    return jobs.run_once(db.session, settings(), link_signer(), keyring(), now=now)
