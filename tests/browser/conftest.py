"""Fixtures of the browser tier: a headless Chromium and the app served on loopback.

The tier is skipped when no Chromium is installed, unless PORTAL_REQUIRE_BROWSER=1 (as in
.ci/run, which installs it): then a missing browser fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import reconfigure
from tests.test_links_live import live_app  # noqa: F401  (fixture reused by this tier)

CHROMIUM = os.environ.get("PORTAL_CHROMIUM") or shutil.which("chromium")
NO_BROWSER = "Chromium is not installed (set PORTAL_REQUIRE_BROWSER=1 to fail instead)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium (and not required), every test of this tier is skipped, visibly."""
    if CHROMIUM is not None or os.environ.get("PORTAL_REQUIRE_BROWSER") == "1":
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason=NO_BROWSER))


# Flags for a sandboxed machine with no network but loopback.
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server(live_app: Flask) -> Iterator[str]:  # noqa: F811  (the fixture imported above)
    """The app served by waitress on a loopback port."""
    import waitress

    server = waitress.create_server(live_app, host="127.0.0.1", port=0, threads=4)
    base = f"http://127.0.0.1:{server.effective_port}"
    reconfigure(live_app, BASE_URL=base)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield base
    server.close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium, one per test module (each test opens its own contexts)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()
