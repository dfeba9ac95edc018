"""One clock: each request reads the app's clock once, each command once; tests set it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import Flask

from portal.clock import request_now

MOMENT = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_a_request_reads_the_clock_once_when_it_begins(app: Flask, clock) -> None:
    clock.set(MOMENT)
    seen: list[datetime] = []

    @app.get("/_clock_probe")
    def probe() -> str:
        seen.append(request_now())
        clock.advance(timedelta(hours=1))  # time passing during the request changes nothing
        seen.append(request_now())
        return "ok"

    assert app.test_client().get("/_clock_probe").status_code == 200
    assert seen == [MOMENT, MOMENT]
    app.test_client().get("/_clock_probe")
    assert seen[-1] == MOMENT + timedelta(hours=1)  # the next request reads it again


def test_a_command_works_at_the_clock_s_time(runner, clock) -> None:
    clock.set(MOMENT)
    result = runner.invoke(args=["config-export", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["generated_at"].startswith("2031-05-06T07:08:09")


def test_the_clock_moves_only_when_told(clock) -> None:
    clock.set(MOMENT)
    assert clock.now() == MOMENT
    clock.advance(timedelta(days=2))
    assert clock.now() == MOMENT + timedelta(days=2)
