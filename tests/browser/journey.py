"""What every end-to-end journey records: a browser context at one width and language, the
console errors, page errors and requests of all its pages, and a screenshot per step.

Screenshots go to ${PORTAL_SCREENSHOT_DIR:-build/screenshots}/<journey>-<language>-<width>/
NN-<step>.png, for people to review; .ci/run prints where they are.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.support import Translations

ROOT = Path(__file__).resolve().parents[2]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
LOCALES = {"en": "en-GB", "de": "de-DE"}
_CATALOG = ROOT / "portal" / "translations"


def screenshot_root() -> Path:
    """Where screenshots go: PORTAL_SCREENSHOT_DIR, else build/screenshots in the checkout."""
    configured = os.environ.get("PORTAL_SCREENSHOT_DIR")
    return Path(configured) if configured else ROOT / "build" / "screenshots"


def words(language: str) -> Any:
    """A gettext function for LANGUAGE from the shipped catalog (English: the text itself)."""
    if language == "en":
        return lambda text: text
    translations = Translations.load(str(_CATALOG), [language], domain="messages")
    assert isinstance(translations, Translations), f"no {language} catalog"
    return translations.gettext


class Journey:
    """One browser context of a journey: what its pages did, and a screenshot per step."""

    def __init__(
        self, browser: Any, server: str, name: str, *, language: str = "en", width: str
    ) -> None:
        self.server = server
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(server))
        self.folder = screenshot_root() / f"{name}-{language}-{VIEWPORTS[width]['width']}"
        # A fresh folder per run: its files are this run's steps, numbered in order.
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.step = 0
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.browser = browser
        self.options = {
            "viewport": VIEWPORTS[width], "locale": LOCALES[language], "accept_downloads": True,
        }  # fmt: skip
        self.contexts: list[Any] = []
        self.context = self.other_context()

    def other_context(self) -> Any:
        """Another browser (own cookies) of the same width and language, recorded alike."""
        context = self.browser.new_context(**self.options)
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def _watch(self, page: Any) -> None:
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and self.errors.append(f"console: {message.text} at {page.url}")
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error} at {page.url}"))

    def page(self, context: Any = None) -> Any:
        """A new page (tab) of CONTEXT (the journey's first), watched from its first request."""
        return (context or self.context).new_page()

    def shot(self, page: Any, step: str) -> Path:
        """Save a full-page screenshot of PAGE as the next step."""
        self.step += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{self.step:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def finish(self) -> None:
        """Close the contexts; fail on any console or page error, or a request elsewhere."""
        for context in self.contexts:
            context.close()
        assert self.errors == [], "\n".join(self.errors)
        elsewhere = [url for url in self.requests if not url.startswith(self.origin + "/")]
        assert elsewhere == [], f"requests to another origin than {self.origin}: {elsewhere}"
        assert self.requests, "the journey made no request"


def sign_in(page: Any, server: str, email: str, password: str) -> None:
    """Sign in on the login page as a person does (labels, the form's button)."""
    page.goto(f"{server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()
    assert "/login" not in page.url, "sign-in was refused"


def open_tucked(page: Any, section: str) -> None:
    """Open SECTION's "Need to …?" fold, if the page tucked its form away (a step done)."""
    fold = page.locator(f"{section} details.another")
    if fold.count() and not fold.first.evaluate("element => element.open"):
        fold.first.locator(":scope > summary").click()
