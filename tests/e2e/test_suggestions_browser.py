"""Suggested replies in a real Chromium: a thread whose newest letter is a viewer's question
shows the team's earlier answers, hovering one shows the question it was given to, and a click
puts it in the reply box without sending anything."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from inbox.models import Message, Session
from inbox.suggestions import pairing, services
from tests.conftest import store_conversation
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _no_kept_indexes():
    """Each process keeps an account's question index a while; tests reuse account ids."""
    services.forget_indexes()
    yield
    services.forget_indexes()


HISTORY = [
    ("什么时候发货？", "亲，现货订单48小时内发货，发出后会有物流短信提醒您～"),
    ("付款好几天了怎么还没发货", "亲，现货订单48小时内发货，发出后会有物流短信提醒您～"),
    ("可以退款吗", "支持七天无理由退货，寄回后我们验收完成就会给您退款"),
    ("尺码偏大还是偏小", "这款是标准码，按平时的尺码拍就可以"),
]


def test_suggestions_show_their_question_on_hover_insert_without_sending_and_follow_new_letters(
    page, live_server, inbox, problems
):
    start = int(time.time()) - 7200
    for number, (question, answer) in enumerate(HISTORY):
        store_conversation(
            inbox, f"earlier-{number}", [(False, question), (True, answer)], start=start
        )
    pairing.pair_new_answers(inbox.pk)
    store_conversation(
        inbox, "waiting", [(False, "你好"), (False, "我的订单啥时候能发货呀")], start=start
    )
    session = Session.objects.get(account=inbox, msg_session_id="waiting")
    Session.objects.filter(pk=session.pk).update(peer_nickname="等回复的小林")
    letters_before = Message.objects.filter(session=session).count()

    sign_in(page, live_server)
    page.locator(".session-row", has_text="等回复的小林").first.click()
    strip = page.locator(f"#suggestions-{session.pk}")
    buttons = strip.locator(".suggestion-button")
    expect(buttons.first).to_be_visible()
    expect(buttons.first).to_contain_text("48小时内发货")
    # The same answer given to two questions is offered once.
    expect(strip.locator(".suggestion-button", has_text="48小时内发货")).to_have_count(1)

    card = strip.locator(".suggestion-card").first
    expect(card).to_be_hidden()
    buttons.first.hover()
    expect(card).to_be_visible()
    expect(card).to_contain_text("发货")
    page.wait_for_timeout(200)  # the card's fade-in, for the screenshot
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "suggestions_hover_shows_the_earlier_question.png"))

    buttons.first.click()
    text = page.locator("#thread-footer textarea")
    expect(text).to_have_value(HISTORY[0][1])
    expect(text).to_be_focused()
    # Inserted, not sent: no reply row, nothing queued.
    page.wait_for_timeout(300)
    assert Message.objects.filter(session=session).count() == letters_before
    assert not Message.objects.filter(session=session, is_sender=True).exists()

    # A new question while the thread is open: the thread poll brings it, and the strip asks
    # again; what was put in the reply box stays.
    store_conversation(
        inbox, "waiting", [(False, "不合适的话可以退款吗？")], start=int(time.time()) - 60
    )
    expect(buttons.first).to_contain_text("退货", timeout=15_000)
    expect(text).to_have_value(HISTORY[0][1])
    assert problems == []
