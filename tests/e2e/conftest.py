"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's
live_server. Run them alone with `pytest -m browser`; each saves a screenshot under
test-artifacts/screenshots/ for a reviewer to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from accounts.sandbox import PEERS
from inbox.models import Session
from inbox.sync import sync_account

# Playwright's sync API keeps an event loop running in this thread; the ORM calls the tests make
# between browser steps are ordinary blocking calls all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, transactional_db):
    """A fresh browser context (English unless the test says otherwise) and a screenshot of
    the last state at the end, named after the test. Set up after the test database, so it is
    closed before the database is flushed: a page left polling the live server meanwhile had its
    request deadlock with the flush's TRUNCATE."""
    locale = getattr(request, "param", "en-US")
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w-]+", "_", request.node.name)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    context.close()


@pytest.fixture
def inbox(account, live_server):
    """The sandbox's example letters and scripted conversation, synced, with peer nicknames
    (as the contact lookup fills them), and a member who can sign in."""
    sync_account(account)
    for peer in PEERS:
        Session.objects.filter(account=account, peer_username=peer.username).update(
            peer_nickname=peer.nickname
        )
    user = User.objects.create_user("agent", password=PASSWORD, first_name="李四")
    account.members.add(user)
    return account


def sign_in(page, live_server, username: str = "agent", password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_selector("#session-list")


# Chromium reports each violation on the console; the event catches what it might not word
# the same way in a later version.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("securitypolicyviolation: " + event.violatedDirective + " blocked " +
    (event.blockedURI || "inline") + " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


@pytest.fixture
def problems(page) -> list[str]:
    """CSP violations and script errors seen by the page, over every navigation."""
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            seen.append(message.text)
            if message.type == "error"
            and re.search(r"Content Security Policy|securitypolicyviolation", message.text)
            else None
        ),
    )
    page.on("pageerror", lambda error: seen.append(f"script error: {error}"))
    return seen
