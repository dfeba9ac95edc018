"""`portal bench`: the scale benchmark (portal.bench) on a throwaway database."""

from __future__ import annotations

import json
import sys

import click

from portal.bench.report import table
from portal.bench.run import Options, run
from portal.bench.target import TargetRefusedError


@click.command("bench")
@click.option(
    "--partners",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Partners to seed (the staff pages are also measured at 100).",
)
@click.option(
    "--requests",
    default=40,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Requests per staff page, and uploads.",
)
@click.option(
    "--partner-requests",
    default=200,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Requests of the partner page (and as many of the bare route).",
)
@click.option(
    "--database-url",
    envvar="PORTAL_DATABASE_URL",
    default=None,
    help="PostgreSQL to use (a throwaway schema in it); default: SQLite in a temp folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--keep", is_flag=True, help="Keep the temp folder and database for inspection.")
def bench_command(
    partners: int,
    requests: int,
    partner_requests: int,
    database_url: str | None,
    as_json: bool,
    keep: bool,
) -> None:
    """Seed a throwaway database, serve it under gunicorn, measure pages and jobs, report.

    A full run (10,000 partners, a million audit events) takes several minutes.
    """
    options = Options(
        partners=partners,
        requests=requests,
        partner_requests=partner_requests,
        database_url=database_url,
        keep=keep,
    )
    try:
        doc, kept = run(options, lambda line: click.echo(line, err=True))
    except TargetRefusedError as error:
        raise click.ClickException(str(error)) from None
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    if kept is not None:
        click.echo(f"kept {kept.folder} (database {kept.database_url})", err=True)
        click.echo(f"sign in as {kept.admin_email} with password {kept.admin_password}", err=True)
    click.echo(json.dumps(doc, indent=2) if as_json else table(doc))
    sys.stdout.flush()
