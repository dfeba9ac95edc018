"""Helpers every `portal` command shares: refusals as exit 1, actors, times, input."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO

import click
from sqlalchemy.exc import OperationalError

from portal.domain.certs import MAX_INPUT_BYTES
from portal.domain.roles import Permission, role_allows
from portal.domain.text import clean_text
from portal.domain.vocab import values_of
from portal.extensions import db
from portal.services import users
from portal.services.actor import Actor
from portal.services.errors import ServiceError
from portal.settings import settings
from portal.timeutil import parse_moment

# Findings that mean "this is not a certificate file at all" (exit 2, not 1).
UNREADABLE_CODES = {"unreadable", "too_large"}


def choice_of(values: type[StrEnum], *extra: str) -> click.Choice[str]:
    """A click choice of the values of an enum of ours (plain strings), then EXTRA ones."""
    return click.Choice([*values_of(values), *extra])


class CleanText(click.ParamType):
    """Text that is stored: control characters stripped, bidi controls refused (as on forms)."""

    name = "text"

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        """The cleaned text, or a usage error naming the option."""
        try:
            return clean_text(str(value), multiline=self.multiline)
        except ValueError as error:
            self.fail(str(error), param, ctx)


TEXT = CleanText()
MULTILINE_TEXT = CleanText(multiline=True)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a service refusal into exit 1 with its message; commit only on success."""
    try:
        yield
    except ServiceError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except OperationalError as error:
        db.session.rollback()
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"The database did not answer: {reason}") from None
    db.session.commit()


def upgrade_schema() -> tuple[str | None, str | None]:
    """Bring the configured database to the newest schema."""
    from portal.migrate import upgrade

    return upgrade(db.engine)


def cli_moment(text: str, now: datetime) -> datetime:
    """Read an --activate-at or --at value; a bad one is a usage error (exit 2)."""
    try:
        return parse_moment(text, now)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def actor_as(email: str | None, permission: Permission | None = None) -> Actor:
    """The command-line actor, on behalf of the staff user EMAIL when given."""
    if email is None:
        return Actor.command_line()
    user = users.find_by_email(db.session, email)
    if user is None or not user.is_enabled:
        raise ServiceError(f"No enabled user {email}.")
    if permission is not None and not role_allows(user.role, permission):
        raise ServiceError(f"{user.email} is {user.role}; that role may not do this.")
    return Actor.command_line(user)


def read_limited(file: BinaryIO) -> bytes:
    """Read a file given on the command line, refusing more than the toolkit accepts."""
    data = file.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ServiceError(f"{file.name} is larger than {MAX_INPUT_BYTES // 1024} KiB.")
    return data


def read_stdin_secret(what: str) -> str:
    """Read one secret line from standard input (for --*-stdin options)."""
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.UsageError(f"--{what}-stdin given but standard input was empty.")
    return value


def command_base_url() -> str:
    """PORTAL_BASE_URL for links a command prints or sends; the fallback, with a warning."""
    from portal.config import FALLBACK_BASE_URL

    configured = settings().base_url
    if configured:
        return str(configured)
    click.echo(
        f"Warning: PORTAL_BASE_URL is not set, so links use {FALLBACK_BASE_URL} (where "
        "`portal serve` listens by default). Set PORTAL_BASE_URL to the address partners reach.",
        err=True,
    )
    return FALLBACK_BASE_URL
