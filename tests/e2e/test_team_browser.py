"""Team features in a real Chromium, two agents in two browser contexts: a conversation a new
letter opens is auto-assigned to the online agent under their cap, whose bell and browser
notifications say so; a mention in a note is suggested, highlighted and notified."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts.sandbox import Peer
from inbox import services
from inbox.models import Session
from inbox.sync import sync_account
from inbox.team import assignment
from inbox.team.models import AssignmentPolicy
from tests.conftest import SANDBOX_APP_ID
from tests.e2e.conftest import PASSWORD, REPORT_VIOLATIONS, SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

NEW_PEER = Peer("v2_team_new_peer@finder", "新客人")

# The page's Notification, replaced before any script runs: it records what would have been
# shown, and says permission was granted (the context grants it too).
CAPTURE_NOTIFICATIONS = """
window.__notifications = [];
class RecordedNotification {
  constructor(title, options) {
    window.__notifications.push({ title: title, body: (options || {}).body || "" });
    this.title = title;
  }
  close() {}
  static requestPermission() { return Promise.resolve("granted"); }
}
RecordedNotification.permission = "granted";
window.Notification = RecordedNotification;
localStorage.setItem("finder.team.notifyInFront", "1");
"""


@pytest.fixture
def agent_b(browser, inbox, live_server, request):
    """王芳 signed in in a second browser context that records browser notifications, CSP
    violations and script errors; a screenshot of its last state at the end."""
    user = User.objects.create_user("wang.fang", password=PASSWORD, first_name="王芳")
    inbox.members.add(user)
    context = browser.new_context(
        locale="en-US", viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai"
    )
    context.grant_permissions(["notifications"], origin=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.problems = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.add_init_script(CAPTURE_NOTIFICATIONS)
    page.on(
        "console",
        lambda message: (
            page.problems.append(message.text)
            if message.type == "error"
            and re.search(r"Content Security Policy|securitypolicyviolation", message.text)
            else None
        ),
    )
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
    sign_in(page, live_server, "wang.fang")
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w-]+", "_", request.node.name)
    page.screenshot(path=str(SCREENSHOTS / f"{name}_agent_b.png"))
    context.close()


def recorded(page) -> list[dict]:
    return page.evaluate("() => window.__notifications")


def test_a_new_conversation_goes_to_the_online_agent_under_cap_and_rings_their_bell(
    page, problems, live_server, inbox, sandbox, agent_b, monkeypatch
):
    agent = User.objects.get(username="agent")
    wang = User.objects.get(username="wang.fang")
    # Both are online; 李四 already has as many open conversations as the cap allows.
    monkeypatch.setattr(assignment, "online_user_ids", lambda ids: set(ids) & {agent.pk, wang.pk})
    AssignmentPolicy.objects.create(
        account=inbox, mode=AssignmentPolicy.Mode.ROUND_ROBIN, cap_per_agent=1
    )
    busy = Session.objects.filter(account=inbox, status=Session.Status.OPEN).first()
    services.assign(busy, agent, agent)
    sign_in(page, live_server)

    sandbox.add_letter(SANDBOX_APP_ID, "你好，我的快递到哪了？", peer=NEW_PEER)
    sync_account(inbox)
    session = Session.objects.get(account=inbox, peer_username=NEW_PEER.username)
    assert session.assignee == wang

    badge = agent_b.locator("#team-bell [data-bell-badge]")
    expect(badge).to_have_text(re.compile(r"^[1-9]"), timeout=8_000)
    agent_b.wait_for_function(
        "() => window.__notifications.some(n => n.title === 'System assigned you a conversation')"
    )
    assert any("你好，我的快递到哪了？" in shown["body"] for shown in recorded(agent_b))

    # A second letter in the conversation now hers: another browser notification.
    sandbox.add_letter(SANDBOX_APP_ID, "麻烦尽快回复", peer=NEW_PEER)
    sync_account(inbox)
    agent_b.wait_for_function(
        "() => window.__notifications.some(n => n.title === 'New letter in your conversation')"
    )
    assert any("麻烦尽快回复" in shown["body"] for shown in recorded(agent_b))

    # The bell lists them; one click opens the conversation, which says who assigned it.
    agent_b.locator("#team-bell summary").click()
    items = agent_b.locator("#team-bell .bell-item")
    expect(items.first).to_contain_text("New letter in your conversation")
    expect(agent_b.locator("#team-bell")).to_contain_text("System assigned you a conversation")
    agent_b.screenshot(path=str(SCREENSHOTS / "team_bell_open_agent_b.png"))
    items.first.locator("button").click()
    expect(agent_b).to_have_url(re.compile(rf"/sessions/{session.pk}/$"))
    expect(agent_b.locator("#thread")).to_contain_text("System assigned to 王芳")
    expect(agent_b.locator("#team-bell [data-bell-badge]")).to_be_hidden(timeout=8_000)

    # 李四, at the cap, got the conversation's news in the bell only, and no browser popup.
    expect(page.locator("#team-bell [data-bell-badge]")).to_have_text("1", timeout=8_000)
    assert problems == [] and agent_b.problems == []


def test_a_mention_is_suggested_highlighted_and_notified(
    page, problems, live_server, inbox, agent_b
):
    session = Session.objects.filter(account=inbox).order_by("pk").first()
    sign_in(page, live_server)
    page.goto(f"{live_server.url}{session.get_absolute_url()}")
    page.locator(".composer-tab-note").click()
    text = page.locator(f"#composer-text-{session.pk}")
    text.type("请 @wa")
    option = page.locator(".mention-option")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("王芳")
    page.screenshot(path=str(SCREENSHOTS / "team_mention_suggestions.png"))
    text.press("Enter")  # chooses the member, does not send
    expect(text).to_have_value("请 @wang.fang ")
    text.type("看一下 @nobody")  # no member: no list, Enter sends
    text.press("Enter")
    note = page.locator("#thread .note").last
    expect(note.locator(".mention")).to_have_text("@wang.fang")
    expect(note).to_contain_text("@nobody")
    expect(note.locator(".mention")).to_have_count(1)

    agent_b.wait_for_function(
        "() => window.__notifications.some(n => n.title === '李四 mentioned you')"
    )
    expect(agent_b.locator("#team-bell [data-bell-badge]")).to_have_text("1")
    assert problems == [] and agent_b.problems == []


def test_the_preferences_page_asks_for_permission_only_on_click(page, problems, live_server, inbox):
    page.add_init_script(
        """
        window.__asked = 0;
        const original = Notification.requestPermission.bind(Notification);
        Notification.requestPermission = function () { window.__asked += 1; return original(); };
        """
    )
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/team/preferences/")
    expect(page.locator("[data-permission-state]")).not_to_be_empty()
    assert page.evaluate("() => window.__asked") == 0
    page.locator("[data-enable-notifications]").click()
    page.wait_for_function("() => window.__asked === 1")
    page.locator("input[name=mention__sound]").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".team-saved")).to_be_visible()
    expect(page.locator("input[name=mention__sound]")).to_be_checked()
    assert problems == []
