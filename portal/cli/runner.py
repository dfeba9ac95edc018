"""`portal run-due` and `portal scheduler`."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError

from portal.extensions import db, link_signer
from portal.services import links, runner
from portal.timeutil import utcnow


@click.command("run-due")
@with_appcontext
def run_due_command() -> None:
    """Perform, once, every side effect whose time has come (safe to run anywhere, any time)."""
    result = _run_once()
    click.echo(
        f"Planned {result.planned}, performed {result.performed}, failed {result.failed} "
        f"side effects; sent {result.sent} emails, {result.unsent} could not be sent."
    )
    if result.failed or result.unsent:
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
    while not stop.is_set():
        try:
            result = _run_once()
        except OperationalError as error:
            # A database restart must not end the loop; the next tick retries.
            click.echo(f"run-due failed, retrying in {interval}s: {type(error).__name__}", err=True)
        else:
            if result.planned or result.performed or result.failed or result.sent:
                click.echo(
                    f"{utcnow():%Y-%m-%dT%H:%M:%SZ} planned {result.planned}, "
                    f"performed {result.performed}, failed {result.failed}, "
                    f"sent {result.sent}, unsent {result.unsent}"
                )
        count += 1
        if iterations and count >= iterations:
            break
        stop.wait(interval)


def _run_once() -> runner.RunResult:
    """Perform due side effects, then send what the outbox holds."""
    import os
    import socket

    from portal.services.mailer import Mailer, SmtpSettings

    name = f"{socket.gethostname()}:{os.getpid()}"
    mailer = Mailer(SmtpSettings.from_config(current_app.config))
    base_url = current_app.config["BASE_URL"]
    try:
        result = runner.run_due(db.session, now=utcnow(), runner=name)
        sent, failed = runner.deliver_outbox(
            db.session,
            mailer.send,
            lambda link_id: links.link_url(base_url, link_signer().sign(link_id)),
            now=utcnow(),
        )
        return runner.RunResult(
            result.planned, result.performed, result.failed, sent=sent, unsent=failed
        )
    finally:
        db.session.rollback()
