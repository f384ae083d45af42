"""Playwright driving Debian's Chromium against the local stack's admin page.

The browser is ``/usr/bin/chromium`` (``make browser-tools`` installs it); Playwright never
downloads one. One Chromium per session, a fresh context (cookies, storage) per test. Every test
gets a clean stack (empty tables, empty Stripe emulator) and may save screenshots with ``shot``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.billing_page import BillingPage

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, started once for the session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-tools` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def requested_urls() -> list[str]:
    """Every URL the test's page asked for, in order."""
    return []


@pytest.fixture
def page(browser: Browser, clean_stack, requested_urls: list[str]) -> Iterator[Page]:
    """A new page in a fresh browser context at desktop size, recording its requests and script errors."""
    context = browser.new_context(viewport=DESKTOP, locale="de-DE", timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("request", lambda req: requested_urls.append(req.url))
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield new_page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def billing_page(page: Page, clean_stack) -> BillingPage:
    """The admin Billing page of the clean stack, not yet opened."""
    return BillingPage(page, clean_stack)


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest):
    """``shot(name)`` saves a full-page screenshot to test-artifacts/browser/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test_name = re.sub(r"^test_", "", request.node.name)

    def save(name: str, *, phone: bool = False) -> Path:
        path = ARTIFACTS / f"{test_name}-{name}.png"
        if phone:
            page.set_viewport_size(PHONE)
        page.screenshot(path=str(path), full_page=True)
        if phone:
            page.set_viewport_size(DESKTOP)
        return path

    return save


def hosts(urls: list[str]) -> set[str]:
    """The host names among ``urls`` (data: and blob: URLs have none)."""
    return {urlsplit(url).hostname for url in urls if urlsplit(url).hostname}
