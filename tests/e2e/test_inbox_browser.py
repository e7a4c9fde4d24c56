"""The inbox in a real Chromium: sign in, read, watch letters arrive, search, switch language."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from accounts.sandbox import PEERS
from inbox.models import Message, Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def open_session(page, nickname: str) -> None:
    page.locator(".session-row", has_text=nickname).first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text(nickname)


def test_sign_in_and_open_a_session(page, live_server, inbox):
    sign_in(page, live_server)
    expect(page.locator(".session-row")).to_have_count(Session.objects.count())
    open_session(page, "王小明")
    session = Session.objects.get(peer_nickname="王小明")
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/$"))
    expect(page.locator("#thread")).to_contain_text("尺码不对")
    # Opening it read it: no badge on its row, and the database agrees.
    expect(page.locator(f"#session-{session.pk} .badge")).to_have_count(0)
    session.refresh_from_db()
    assert session.unread_count == 0


def card_id(card) -> str:
    return card.get_attribute("id").removeprefix("image-")


def test_an_image_card_loads_its_picture(page, live_server, inbox, sandbox):
    sign_in(page, live_server)
    open_session(page, "王小明")
    card = page.locator(".image-card").first
    expect(card).to_contain_text("160×120")
    box = card.locator(".image-frame").bounding_box()
    assert abs(box["width"] / box["height"] - 160 / 120) < 0.02
    card.get_by_role("button", name="Load image").click()
    picture = page.locator(".image-card img").first
    expect(picture).to_be_visible()
    # Our stored copy (inbox.pictures), never the upstream's file URL.
    assert picture.get_attribute("src").startswith(f"/messages/{card_id(card)}/picture/")
    # A function, not an expression: Playwright re-evaluates an expression with eval() on each
    # poll, which the Content-Security-Policy refuses.
    page.wait_for_function("() => document.querySelector('.image-card img').naturalWidth > 0")


def test_a_letter_synced_while_the_page_is_open_appears_without_reload(
    page, live_server, inbox, sandbox
):
    sign_in(page, live_server)
    open_session(page, "王小明")
    page.evaluate("window.__marker = 'same page'")
    sandbox.add_letter(SANDBOX_APP_ID, "刚下的单，能今天发货吗？", peer=PEERS[1])
    sandbox.add_letter(SANDBOX_APP_ID, "Tom 的新问题", peer=PEERS[4])
    committed = time.monotonic()
    sync_account(inbox)
    thread = page.locator("#thread .messages")
    expect(thread.locator(".message").last).to_contain_text("刚下的单", timeout=5_000)
    assert time.monotonic() - committed < 5
    # The other session moved to the top of the list with its preview and badge.
    tom = Session.objects.get(peer_nickname="Tom Zhang")
    first_row = page.locator("#session-list .session-row").first
    expect(first_row).to_have_id(f"session-{tom.pk}", timeout=5_000)
    expect(first_row).to_contain_text("Tom 的新问题")
    expect(page).to_have_title(re.compile(r"^\(\d+\) 王小明"))
    assert page.evaluate("window.__marker") == "same page"
    # The open thread, seen in a visible tab, was read; the letter is shown once.
    wang = Session.objects.get(peer_nickname="王小明")
    expect(page.locator(f"#session-{wang.pk} .badge")).to_have_count(0)
    expect(thread.get_by_text("刚下的单，能今天发货吗？")).to_have_count(1)


def test_search_finds_a_chinese_phrase_and_jumps_to_it(page, live_server, inbox):
    sign_in(page, live_server)
    page.keyboard.press("/")
    expect(page.locator("#search-input")).to_be_focused()
    page.keyboard.type("优惠券")
    hits = page.locator(".result-message")
    expect(hits).to_have_count(2)
    expect(hits.first.locator("mark")).to_have_text("优惠券")
    hits.last.click()
    target = Message.objects.filter(content__contains="优惠券").order_by("created_at").first()
    focused = page.locator(f"#message-{target.pk}")
    expect(focused).to_have_class(re.compile("is-focused"))
    expect(focused).to_be_in_viewport()
    expect(page).to_have_url(re.compile(rf"around={target.pk}"))


@pytest.mark.parametrize("page", ["zh-CN"], indirect=True)
def test_the_browser_language_is_used_and_the_switch_changes_it(page, live_server, inbox):
    page.goto(f"{live_server.url}/")
    expect(page.locator("button[type=submit]")).to_have_text("登录")
    sign_in(page, live_server)
    expect(page.locator(".list-title")).to_have_text("全部会话")
    open_session(page, "王小明")
    expect(page.locator(".image-card button")).to_have_text("加载图片")
    page.locator("#language-select").select_option("en")
    expect(page.locator(".list-title")).to_have_text("All conversations")
    expect(page.locator(".image-card button")).to_have_text("Load image")
    # Still on the same thread after switching.
    expect(page.locator("#thread .thread-title h2")).to_have_text("王小明")


def test_the_back_button_returns_to_the_previous_thread(page, live_server, inbox):
    sign_in(page, live_server)
    open_session(page, "王小明")
    open_session(page, "陈阿姨的花店")
    page.keyboard.press("j")
    expect(page.locator("#thread .thread-title h2")).not_to_have_text("陈阿姨的花店")
    page.go_back()
    expect(page.locator("#thread .thread-title h2")).to_have_text("陈阿姨的花店")
    page.go_back()
    expect(page.locator("#thread .thread-title h2")).to_have_text("王小明")
    wang = Session.objects.get(peer_nickname="王小明")
    expect(page).to_have_url(re.compile(rf"/sessions/{wang.pk}/$"))
    expect(page.locator(f"#session-{wang.pk}")).to_have_attribute("aria-current", "true")
    page.reload()
    expect(page.locator("#thread .thread-title h2")).to_have_text("王小明")


def test_a_phone_shows_one_pane_at_a_time(browser, live_server, inbox, request):
    from tests.e2e.conftest import SCREENSHOTS

    context = browser.new_context(
        viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    try:
        sign_in(page, live_server)
        expect(page.locator("#thread-pane")).to_be_hidden()
        page.locator(".session-row", has_text="王小明").click()
        expect(page.locator("#list-pane")).to_be_hidden()
        expect(page.locator("#thread")).to_contain_text("尺码不对")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "test_a_phone_shows_one_pane_at_a_time.png"))
        page.locator("#thread-close").click()
        expect(page.locator("#list-pane")).to_be_visible()
        expect(page.locator("#thread-pane")).to_be_hidden()
    finally:
        context.close()


def test_load_older_keeps_the_reader_in_place(page, live_server, inbox, sandbox):
    for n in range(60):
        sandbox.add_letter(SANDBOX_APP_ID, f"第 {n} 个问题", peer=PEERS[3])
    sync_account(inbox)
    sign_in(page, live_server)
    open_session(page, "陈阿姨的花店")
    messages = page.locator("#thread .messages .message")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("第 59 个问题")
    page.locator("#thread-scroll").evaluate("box => box.scrollTop = 0")
    anchor = messages.first
    anchor_id = anchor.get_attribute("id")
    before = page.locator(f"#{anchor_id}").bounding_box()["y"]
    page.locator("#load-older").click()
    expect(messages).to_have_count(
        Message.objects.filter(session__peer_nickname="陈阿姨的花店").count()
    )
    expect(page.locator("#load-older")).to_have_count(0)
    after = page.locator(f"#{anchor_id}").bounding_box()["y"]
    assert abs(after - before) < 4
    expect(page.locator("#thread .day-sep")).to_have_count(1)
