"""`portal user reset-2fa`: remove a user's second factor (lost phone and recovery codes)."""

from __future__ import annotations

import click

from portal.cli.common import refusals
from portal.cli.setup import user_group
from portal.extensions import db
from portal.services import two_factor, users
from portal.services.actor import Actor
from portal.services.errors import NotFoundError


@user_group.command("reset-2fa")
@click.argument("email")
def user_reset_two_factor_command(email: str) -> None:
    """Reset EMAIL's two-factor sign-in (audited); they sign in with the password alone."""
    with refusals():
        user = users.find_by_email(db.session, email)
        if user is None:
            raise NotFoundError(f"No user {email}.")
        was_on = two_factor.reset(db.session, Actor.command_line(), user)
    if was_on:
        click.echo(f"Reset two-factor sign-in of {user.email}.")
    else:
        click.echo(f"{user.email} had no two-factor sign-in; nothing to reset (recorded anyway).")
