"""Two agents in two browser contexts on one conversation (inbox.live, static/inbox/live.js):
B sees A viewing and typing, and A's reply makes B's send ask first. The live server is WSGI,
so the events stream answers 204 and everything here travels by heartbeat and poll, the
baseline that always works."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts.sandbox import PEERS
from inbox.models import Message, Session
from tests.e2e.conftest import PASSWORD, REPORT_VIOLATIONS, SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

NICKNAME = PEERS[1].nickname


@pytest.fixture
def colleague(inbox) -> User:
    """王芳, agent A; the inbox fixture's 李四 ("agent") is agent B."""
    user = User.objects.create_user("wang.fang", password=PASSWORD, first_name="王芳")
    inbox.members.add(user)
    return user


@pytest.fixture
def page_a(browser):
    context = browser.new_context(
        locale="en-US", viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "test_live_agent_a.png"))
    context.close()


def watch(page) -> list[str]:
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.append(f"script error: {error}"))
    return seen


def test_b_sees_a_viewing_and_typing_and_a_reply_since_makes_b_confirm(
    page, page_a, inbox, colleague, live_server
):
    problems = watch(page)
    problems_a = watch(page_a)
    session = Session.objects.get(peer_nickname=NICKNAME)
    url = f"{live_server.url}{session.get_absolute_url()}"

    sign_in(page_a, live_server, "wang.fang")
    page_a.goto(url)
    sign_in(page, live_server)
    page.goto(url)
    viewers = page.locator(f"#live-viewers-{session.pk}")

    # A has a tab open: B's assignee picker says so, and B's header says A is here.
    expect(page.locator(f"#assignee-{session.pk} option[value='{colleague.pk}']")).to_have_text(
        "王芳 · Online"
    )
    expect(viewers).to_have_text("王芳 is viewing", timeout=4000)
    page.screenshot(path=str(SCREENSHOTS / "test_live_b_sees_a_viewing.png"))

    # A types: B sees it within a heartbeat or two.
    composer_a = page_a.locator(f"#composer-text-{session.pk}")
    composer_a.click()
    composer_a.press_sequentially("您好，已经")
    expect(viewers).to_have_text("王芳 is typing…", timeout=4000)
    page.screenshot(path=str(SCREENSHOTS / "test_live_b_sees_a_typing.png"))

    # B writes too. B's thread poll is held so that A's reply is still on its way to B's
    # screen when B sends: the crossing the guard exists for.
    page.evaluate("document.getElementById('thread-poller').removeAttribute('data-poll')")
    composer_b = page.locator(f"#composer-text-{session.pk}")
    composer_b.fill("我来处理")
    composer_a.press_sequentially("发货了")
    composer_a.press("Enter")
    expect(page_a.locator(".message.message-out", has_text="您好，已经发货了")).to_be_visible()

    composer_b.press("Enter")
    confirm = page.locator(".composer-confirm")
    expect(confirm).to_contain_text("王芳 replied")
    expect(confirm).to_contain_text("“您好，已经发货了” Send anyway?")
    assert not Message.objects.filter(content="我来处理").exists()
    expect(page.locator(f"#composer-text-{session.pk}")).to_have_value("我来处理")
    page.screenshot(path=str(SCREENSHOTS / "test_live_b_asked_before_sending.png"))

    page.locator("[data-action=send-anyway]").click()
    expect(page.locator(".message.message-out", has_text="我来处理")).to_be_visible()
    expect(page.locator(".composer-confirm")).to_have_count(0)
    assert Message.objects.filter(content="我来处理", author__username="agent").count() == 1
    assert [
        p for p in problems + problems_a if "Content Security Policy" in p or "script" in p
    ] == []


def test_the_availability_switch(page, inbox, live_server):
    problems = watch(page)
    sign_in(page, live_server)
    page.locator("#live-status").select_option("busy")
    expect(page.locator("#live-switch .availability-dot")).to_have_attribute(
        "data-availability", "busy"
    )
    page.wait_for_timeout(300)
    page.reload()
    expect(page.locator("#live-status")).to_have_value("busy")
    assert [p for p in problems if "Content Security Policy" in p or "script" in p] == []
