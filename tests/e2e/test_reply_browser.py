"""Answering in a real Chromium: reply (sending → sent, single after sync), resolve and reopen,
notes and saved replies, snooze and assignment."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts.sandbox import PEERS
from accounts.sandbox_media import png_bytes
from inbox import services
from inbox.models import CannedReply, Message, Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

SEND_PATH = "/finder/postPrivateLetter"


class HeldSends:
    """Stands in for the send_reply task: the live server queues replies here, and the test
    delivers them when it has seen them "sending". (With the real eager task the send runs on
    commit inside the POST itself, so the bubble would be sent before the browser could look.)"""

    def __init__(self) -> None:
        self.queued: list[int] = []

    def delay(self, message_id: int) -> None:
        self.queued.append(message_id)

    def deliver_all(self) -> None:
        while self.queued:
            services.deliver_reply(self.queued.pop(0))


@pytest.fixture
def held_sends(monkeypatch) -> HeldSends:
    held = HeldSends()
    monkeypatch.setattr("inbox.tasks.send_reply", held)
    return held


def open_session(page, nickname: str) -> Session:
    page.locator(".session-row", has_text=nickname).first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text(nickname)
    return Session.objects.get(peer_nickname=nickname)


@pytest.fixture(autouse=True)
def no_script_errors(page):
    """Every test here also fails on an uncaught error in the page's scripts."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


def next_poll(page, path: str) -> None:
    """Wait for the next poll to `path` issued from now on (so it sees what the test has just
    committed) and for its answer to be swapped in."""
    with page.expect_request(lambda request: urlparse(request.url).path == path) as sent:
        pass
    sent.value.response()
    # A function: Playwright would eval() an expression on every poll, which the CSP refuses.
    page.wait_for_function("() => !document.querySelector('[data-poll].htmx-request')")


def snapshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_a_reply_goes_from_sending_to_sent_stays_single_and_a_new_letter_reopens(
    page, live_server, inbox, sandbox, held_sends
):
    sign_in(page, live_server)
    session = open_session(page, "王小明")
    text = page.locator("#thread-footer textarea")
    text.click()
    text.type("好的，已为您登记换货。")
    text.press("Shift+Enter")
    text.type("新的尺码明天发出。")
    text.press("Enter")

    bubble = page.locator("#thread .message-out", has_text="已为您登记换货").last
    expect(bubble).to_have_class(re.compile(r"\bdelivery-sending\b"))
    expect(bubble.locator(".delivery")).to_have_text("Sending…")
    expect(bubble.locator(".message-author")).to_have_text("李四")
    expect(bubble.locator(".text br")).to_have_count(1)
    expect(text).to_have_value("")
    expect(text).to_be_focused()
    snapshot(page, "reply_sending")

    [reply_id] = held_sends.queued
    held_sends.deliver_all()
    expect(bubble).to_have_class(re.compile(r"\bdelivery-sent\b"), timeout=8_000)
    expect(bubble.locator(".delivery-sent")).to_be_visible()
    assert len(sandbox.calls_to(SEND_PATH)) == 1

    # The next sync brings the reply's echo; it becomes the same row, shown once.
    result = sync_account(inbox)
    assert result.new_messages == 0
    reply = Message.objects.get(pk=reply_id)
    assert reply.delivery == Message.Delivery.SENT and reply.raw is not None
    next_poll(page, f"/sessions/{session.pk}/poll/")
    expect(page.locator("#thread .message", has_text="已为您登记换货")).to_have_count(1)

    page.get_by_role("button", name="Resolve").click()
    header = page.locator(f"#thread-header-{session.pk}")
    expect(header.locator(".status")).to_have_text("Resolved")
    expect(page.locator("#thread .activity-line").last).to_contain_text(
        "李四 resolved this conversation"
    )
    expect(page.locator(f"#session-{session.pk} .status")).to_have_text("Resolved")
    session.refresh_from_db()
    assert session.status == Session.Status.RESOLVED

    sandbox.add_letter(SANDBOX_APP_ID, "收到了，谢谢！还有一个问题", peer=PEERS[1])
    sync_account(inbox)
    expect(header.locator(".status")).to_have_text("Open", timeout=8_000)
    expect(page.locator("#thread .message-in").last).to_contain_text("还有一个问题")
    expect(page.get_by_role("button", name="Resolve")).to_be_visible()


def test_notes_and_canned_replies_from_the_composer(page, live_server, inbox, sandbox, settings):
    settings.PUBLIC_BASE_URL = ""
    CannedReply.objects.create(
        title="换货流程", text="请在订单页点击「申请换货」，运费由我们承担。"
    )
    CannedReply.objects.create(title="发货时间", text="今天下单，明天发货。", account=inbox)
    CannedReply.objects.create(title="别的账号", text="不该出现", account=None)
    sign_in(page, live_server)
    session = open_session(page, "王小明")
    text = page.locator("#thread-footer textarea")

    text.click()
    text.type("/")
    menu = page.locator(".canned-menu")
    expect(menu.locator(".canned-option")).to_have_count(3)
    text.type("换货")
    expect(menu.locator(".canned-option")).to_have_count(1)
    snapshot(page, "composer_canned_replies")
    text.press("Enter")
    expect(menu).to_be_hidden()
    expect(text).to_have_value("请在订单页点击「申请换货」，运费由我们承担。")

    text.fill("")
    text.type("/发货")
    expect(menu.locator(".canned-option")).to_have_count(1)
    text.press("Escape")
    expect(menu).to_be_hidden()
    expect(text).to_have_value("/发货")
    expect(text).to_be_focused()

    # Image replies are off without PUBLIC_BASE_URL, and the button says why.
    attach = page.locator("#thread-footer .attach-off")
    expect(attach.locator("button")).to_be_disabled()
    expect(attach).to_have_attribute("data-tip", re.compile("PUBLIC_BASE_URL is not set"))

    # A reply over the limit is refused with the limit said, and nothing is queued.
    text.fill("长" * (services.MAX_REPLY_LENGTH + 1))
    text.press("Enter")
    expect(page.locator("#thread-footer .form-error")).to_contain_text("at most 1000 characters")
    expect(text).to_have_value("长" * (services.MAX_REPLY_LENGTH + 1))
    assert not Message.objects.filter(session=session, author__username="agent").exists()

    page.get_by_text("Private note").click()
    expect(page.locator("#thread-footer .composer")).to_have_class(re.compile(r"\bis-note\b"))
    text.fill("客户是老顾客，可以优先换货")
    snapshot(page, "composer_note_mode")
    text.press("Enter")
    note = page.locator("#thread .note").last
    expect(note).to_contain_text("客户是老顾客")
    expect(note.locator(".note-author")).to_have_text("李四")
    # Still in note mode for the next one; nothing went upstream.
    expect(page.locator("#thread-footer .composer")).to_have_class(re.compile(r"\bis-note\b"))
    assert sandbox.calls_to(SEND_PATH) == []


def test_snooze_and_assignment_from_the_header(page, live_server, inbox):
    colleague = User.objects.create_user("wang.wu", password="x", first_name="王五")
    inbox.members.add(colleague)
    sign_in(page, live_server)
    session = open_session(page, "Lily 🌸")
    header = page.locator(f"#thread-header-{session.pk}")

    header.get_by_title("Status and snooze").click()
    status_menu = header.get_by_role("group", name="Status and snooze")
    expect(status_menu).to_be_visible()
    snapshot(page, "status_menu")
    header.get_by_role("button", name=re.compile("^Tomorrow")).click()
    expect(header.locator(".status")).to_contain_text("Snoozed")
    expect(header.locator(".status")).to_contain_text("until tomorrow 09:00")
    expect(status_menu).to_be_hidden()

    # Each member is offered with their availability (inbox.live); 王五 has no tab open.
    header.locator("select[name=assignee]").select_option(label="王五 · Offline")
    expect(header.locator(".assignee")).to_have_text("Assigned to 王五")
    expect(page.locator(f"#session-{session.pk} .tag-assignee")).to_have_text("王五")
    header.get_by_role("button", name="Assign to me").click()
    expect(header.locator(".assignee")).to_have_text("Assigned to 李四")
    expect(header.get_by_role("button", name="Assign to me")).to_have_count(0)
    lines = page.locator("#thread .activity-line")
    expect(lines).to_have_count(3)
    expect(lines.nth(1)).to_contain_text("李四 assigned this conversation: 王五")
    expect(lines.nth(2)).to_contain_text("李四 assigned this conversation: 李四")

    # The sidebar's tabs count it: snoozed, and mine.
    next_poll(page, "/poll/")
    expect(page.locator("#nav-status .nav-link", has_text="Snoozed")).to_contain_text("1")
    page.locator("#nav-views .nav-link", has_text="Mine").click()
    expect(page.locator("#session-list .session-row")).to_have_count(1)
    expect(page.locator(f"#session-{session.pk}")).to_be_visible()
    snapshot(page, "assigned_and_snoozed")


def test_an_image_reply_from_the_attach_button(
    page, live_server, inbox, sandbox, settings, tmp_path, held_sends
):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    settings.MEDIA_ROOT = tmp_path
    sign_in(page, live_server)
    open_session(page, "Tom Zhang")
    text = page.locator("#thread-footer textarea")
    text.fill("草稿还在")
    page.locator("#thread-footer input[type=file]").set_input_files(
        files=[{"name": "photo.png", "mimeType": "image/png", "buffer": png_bytes(64, 48, "x")}]
    )
    bubble = page.locator("#thread .message-out.delivery-sending .reply-image img")
    expect(bubble).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#thread .reply-image img').naturalWidth === 64"
    )
    # The text being written is left alone, and the next image gets a fresh form.
    expect(text).to_have_value("草稿还在")
    expect(page.locator("#thread-footer input[type=file]")).to_have_value("")
    held_sends.deliver_all()
    expect(page.locator("#thread .message-out .reply-image").last).to_be_visible()
    expect(page.locator("#thread .message-out", has=page.locator(".reply-image"))).to_have_class(
        re.compile(r"\bdelivery-sent\b"), timeout=8_000
    )
    [call] = sandbox.calls_to("/finder/postPrivateLetterImg")
    assert call["body"]["imgUrl"].startswith("https://inbox.example.com/media/replies/")

    # A file that is not an image is refused where the composer shows its errors.
    page.locator("#thread-footer input[type=file]").set_input_files(
        files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"<?php echo 1; ?>"}]
    )
    expect(page.locator("#thread-footer .form-error")).to_contain_text("Only PNG, JPEG")
    snapshot(page, "image_reply")
