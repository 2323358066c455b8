"""Browser tests of the web console: the real coordinator, real Chromium (headless).

Chromium is the system's (``/usr/bin/chromium``), driven by Playwright's sync API; no
``playwright install``. Without Playwright or Chromium these tests are skipped, except
in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.conftest import IN_CI, ApiClient, Coordinator

CHROMIUM = os.environ.get("BACKDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
# Screenshots go to a temporary folder unless BACKDESK_SCREENSHOT_DIR says where (set it to
# docs/screenshots to refresh the README's pictures): a test run changes no tracked file.
SCREENSHOTS = Path(os.environ.get("BACKDESK_SCREENSHOT_DIR") or tempfile.gettempdir()) / (
    "" if os.environ.get("BACKDESK_SCREENSHOT_DIR") else "backdesk-console-screenshots"
)
_names = itertools.count(1)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and every later asyncio.run() in the session would fail.
@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (skipped, or failed in CI, when
    either is missing). Other folders' ``browser`` fixtures use this too."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@dataclass
class User:
    name: str
    role: str
    password: str
    secret: str

    def code(self) -> str:
        return str(pyotp.TOTP(self.secret).now())

    def wrong_code(self) -> str:
        return f"{(int(self.code()) + 500_000) % 1_000_000:06d}"


@dataclass
class Console:
    """A coordinator and a browser, with helpers to make users and sign them in."""

    coordinator: Coordinator
    browser: Any
    contexts: list[Any] = field(default_factory=list)
    _admin: ApiClient | None = None

    @property
    def url(self) -> str:
        return self.coordinator.url

    def user(
        self, role: str, name: str | None = None, full_name: str | None = None, cli: bool = False
    ) -> User:
        """A new account; through the REST API (fast) or ``backdesk-coordinator user add``."""
        name = name or f"{role}-{next(_names)}"
        if cli:
            result = self.coordinator.cli(
                "user",
                "add",
                name,
                "--role",
                role,
                "--password-stdin",
                "--json",
                input=PASSWORD + "\n",
            )
            uri = json.loads(result.stdout)["totp_uri"]
        else:
            body = {"name": name, "role": role, "password": PASSWORD}
            if full_name:
                body["full_name"] = full_name
            status, created = self.api().request("POST", "/api/v1/users", body)
            assert status == 201, created
            uri = created["totp_uri"]
        totp = pyotp.parse_uri(uri)
        assert isinstance(totp, pyotp.TOTP)
        return User(name, role, PASSWORD, totp.secret)

    def api(self) -> ApiClient:
        """An admin REST client (for setting up tickets)."""
        if self._admin is None:
            self._admin = ApiClient(self.coordinator, self.coordinator.api_key("admin"))
        return self._admin

    def context(self) -> Any:
        context = self.browser.new_context(
            ignore_https_errors=True,  # the coordinator's self-signed certificate
            base_url=self.url,
            viewport={"width": 1440, "height": 900},
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context

    def sign_in(self, user: User, context: Any = None) -> Any:
        """A page signed in as ``user`` (a fresh browser context unless one is given)."""
        page = (context or self.context()).new_page()
        page.goto("/login")
        fill_login(page, user.name, user.password, user.code())
        page.wait_for_url("**/queue**")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


def fill_login(page: Any, name: str, password: str, code: str) -> None:
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")


@pytest.fixture(scope="module")
def console(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One coordinator for a module of tests. Failed sign-ins count per address, and
    every browser is 127.0.0.1: tests that fail on purpose use ``fresh_console``."""
    coordinator = Coordinator(
        tmp_path_factory.mktemp("console") / "coordinator",
        # The SLA watchdog would move tickets between queues behind the tests' backs.
        extra=(*Coordinator.extra, "--sla-check-interval", "3600"),
    )
    coordinator.start()
    desk = Console(coordinator, browser)
    try:
        yield desk
    finally:
        desk.close()
        coordinator.stop()


@pytest.fixture
def fresh_console(browser: Any, coordinator: Coordinator) -> Iterator[Console]:
    """A coordinator of its own, for tests that trip the sign-in rate limits."""
    desk = Console(coordinator, browser)
    try:
        yield desk
    finally:
        desk.close()


def run_async(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion in its own thread (Playwright's sync API owns this
    thread's event loop)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def new_ticket(console: Console, **fields: Any) -> dict[str, Any]:
    """A ticket opened through the REST API (as an integration would)."""
    body = {"subject": "Printer on floor 2 is jammed", "description": "It blinks orange."}
    body.update(fields)
    status, ticket = console.api().request("POST", "/api/v1/tickets", body)
    assert status == 201, ticket
    return dict(ticket)
