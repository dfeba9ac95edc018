"""`portal ...` commands: thin wrappers over the services.

The `portal` program itself (portal.main) lives beside create_app: it builds the
whole app, and this face does not import the other one (portal.web).

Exit codes: 0 done, 1 refused (one-line reason on stderr), 2 usage error (click's own).
"""

from __future__ import annotations

import click
from flask import Flask

from portal.cli import (
    keystore,  # noqa: F401  (adds `identity export` to the identity group)
    two_factor,  # noqa: F401  (adds `user reset-2fa` to the user group)
)
from portal.cli.audit import audit_group
from portal.cli.bench import bench_command
from portal.cli.campaigns import campaign_group
from portal.cli.certs import cert_group, keys_group
from portal.cli.directory import identity_group, partner_group
from portal.cli.export import export_command
from portal.cli.links import link_group
from portal.cli.review import config_export_command, submission_group, submissions_group
from portal.cli.runner import run_due_command, scheduler_command
from portal.cli.setup import init_command, serve_command, user_group
from portal.cli.tokens import token_group
from portal.cli.webhooks import webhook_group

COMMANDS: list[click.Command] = [
    init_command,
    serve_command,
    user_group,
    identity_group,
    partner_group,
    cert_group,
    keys_group,
    link_group,
    campaign_group,
    token_group,
    webhook_group,
    submissions_group,
    submission_group,
    config_export_command,
    export_command,
    audit_group,
    run_due_command,
    scheduler_command,
    bench_command,
]


def register_commands(app: Flask) -> None:
    """Make every command available as `flask --app portal ...` and `portal ...`."""
    for command in COMMANDS:
        app.cli.add_command(command)
