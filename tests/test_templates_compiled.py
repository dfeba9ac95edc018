"""Templates compile once per process: no freshness check per render, one environment."""

from __future__ import annotations

from portal import TEMPLATE_CACHE_SIZE, create_app
from tests.conftest import test_settings
from tests.linkhelpers import share


def test_templates_are_not_reloaded_outside_debug(app) -> None:
    assert app.jinja_env.auto_reload is False
    assert app.jinja_env.cache is not None
    assert app.jinja_env.cache.capacity == TEMPLATE_CACHE_SIZE


def test_the_setting_turns_reloading_on_for_template_work(tmp_path, database_url) -> None:
    app = create_app(test_settings(tmp_path, database_url, TEMPLATES_AUTO_RELOAD=True))
    assert app.jinja_env.auto_reload is True


def test_a_second_render_neither_loads_a_template_nor_builds_an_environment(
    app, client, session, monkeypatch
) -> None:
    shared = share(session)
    session.commit()
    environment = app.jinja_env
    assert client.get(shared.page).status_code == 200

    def no_loading(*_args: object) -> None:
        raise AssertionError("a template was loaded again")

    monkeypatch.setattr(environment.loader, "get_source", no_loading)
    assert client.get(shared.page).status_code == 200
    assert app.jinja_env is environment
