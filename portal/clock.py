"""The one source of "now" for the faces: a clock per app, read once per request or command.

create_app installs a Clock (real UTC time) in app.extensions; tests install one they
can set and move (the `clock` fixture in tests/conftest.py). Each web request reads it
once, before anything else runs (`request_now()`); each command reads it once at its
start (`command_now()`). The time is then passed down: services and page builders take
`now=`, and never read a clock themselves.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, g

from portal.timeutil import utcnow

CLOCK_KEY = "portal.clock"


class Clock:
    """Real time, as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time."""
        return utcnow()


def init_clock(app: Flask) -> None:
    """Give APP the real clock, and take the time once at the start of each request."""
    install_clock(app, Clock())
    app.before_request(_take_request_time)


def install_clock(app: Flask, clock: Clock) -> None:
    """Make CLOCK the source of now for APP (tests install a settable one)."""
    app.extensions[CLOCK_KEY] = clock


def app_clock() -> Clock:
    """The current app's clock."""
    clock: Clock = current_app.extensions[CLOCK_KEY]
    return clock


def _take_request_time() -> None:
    g.now = app_clock().now()


def request_now() -> datetime:
    """The time of this request, read once when it began."""
    if "now" not in g:
        g.now = app_clock().now()
    now: datetime = g.now
    return now


def command_now() -> datetime:
    """The time a command works at; a command reads it once, at its start, and passes it down."""
    return app_clock().now()
