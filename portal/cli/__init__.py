"""`portal ...` commands: thin wrappers over the services.

Exit codes: 0 done, 1 refused (one-line reason on stderr), 2 usage error (click's own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup

from portal.cli.certs import cert_group, keys_group
from portal.cli.directory import identity_group, partner_group
from portal.cli.links import link_group
from portal.cli.review import config_export_command, submission_group, submissions_group
from portal.cli.runner import run_due_command, scheduler_command
from portal.cli.setup import init_command, serve_command, user_group

COMMANDS: list[click.Command] = [
    init_command,
    serve_command,
    user_group,
    identity_group,
    partner_group,
    cert_group,
    keys_group,
    link_group,
    submissions_group,
    submission_group,
    config_export_command,
    run_due_command,
    scheduler_command,
]


def register_commands(app: Flask) -> None:
    """Make every command available as `flask --app portal ...` and `portal ...`."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app_for_cli() -> Flask:
    from portal import create_app

    return create_app()


main: Callable[..., Any] = FlaskGroup(
    name="portal",
    help="Certificate Exchange Portal.",
    create_app=_create_app_for_cli,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
