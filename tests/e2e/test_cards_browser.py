"""Share cards in a real Chromium: a thread with a shared Channels video shows its card (cover,
title, author, duration) and one with a shared live its live badge, with no CSP violation or
script error. The covers are real pictures: the sandbox serves the ones its shares name, the
server downloads them when the thread is opened, and the page shows our stored copy, arriving
through the thread's poll. The browser itself asks nothing of any other origin."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from accounts.sandbox import PEERS
from accounts.sandbox_media import finder_live_xml
from inbox.sync import sync_account
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

OUR_COVER = re.compile(r"^/messages/\d+/picture/thumb/\?v=[0-9a-f]{16}$")


@pytest.fixture
def elsewhere(page, live_server) -> list[str]:
    """Every URL the page asked of an origin other than the inbox's own."""
    ours = urlsplit(live_server.url).netloc
    asked: list[str] = []
    page.on(
        "request",
        lambda request: (
            asked.append(request.url)
            if urlsplit(request.url).scheme in ("http", "https")
            and urlsplit(request.url).netloc != ours
            else None
        ),
    )
    return asked


def open_session(page, nickname: str) -> None:
    page.locator(".session-row", has_text=nickname).first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text(nickname)


def test_a_shared_channels_video_shows_its_card_with_cover_title_and_author(
    page, live_server, inbox, elsewhere, problems
):
    sign_in(page, live_server)
    open_session(page, PEERS[2].nickname)

    card = page.locator(".share-card.share-video")
    card.scroll_into_view_if_needed()
    expect(card.locator(".share-title")).to_have_text("Spring collection 春季新品")
    expect(card.locator(".share-author")).to_contain_text("沙盒小店")
    expect(card.locator(".share-avatar")).to_have_text("沙")  # the initial, not a picture
    expect(card.locator(".share-badge")).to_have_text("▶ 0:33")
    expect(card.locator(".app-kind")).to_have_text("shared a Channels video")
    # Stored on our side when the thread was opened; the poll swaps the placeholder for it.
    cover = card.locator(".share-cover img")
    expect(cover).to_be_visible(timeout=15_000)
    expect(cover).to_have_attribute("src", OUR_COVER)
    cover.evaluate("img => img.decode()")
    assert cover.evaluate("img => img.naturalWidth") == 180  # the sandbox's 9:16 cover
    assert elsewhere == []
    # A portrait (9:16) video is shown no taller than 3:4.
    box = card.locator(".image-frame").bounding_box()
    assert abs(box["width"] / box["height"] - 3 / 4) < 0.02
    assert "当前微信版本不支持" not in card.inner_text()
    card.screenshot(path=str(SCREENSHOTS / "share_card_video.png"))
    assert problems == []


def test_a_shared_channels_live_shows_its_live_badge(
    page, live_server, inbox, sandbox, elsewhere, problems
):
    sandbox.add_letter(
        inbox.app_id,
        finder_live_xml(
            "coupons", desc="今晚8点 福利直播 🎁", nickname="沙盒小店", base_url=sandbox.base_url
        ),
        peer=PEERS[3],
        msg_type=49,
    )
    sync_account(inbox)
    sign_in(page, live_server)
    open_session(page, PEERS[3].nickname)

    card = page.locator(".share-card.share-live")
    card.scroll_into_view_if_needed()
    expect(card.locator(".share-title")).to_have_text("今晚8点 福利直播 🎁")
    expect(card.locator(".share-badge-live-now")).to_have_text("Live now")
    expect(card.locator(".share-avatar")).to_be_visible()
    cover = card.locator(".share-cover img")
    expect(cover).to_be_visible(timeout=15_000)
    expect(cover).to_have_attribute("src", OUR_COVER)
    card.screenshot(path=str(SCREENSHOTS / "share_card_live.png"))
    assert elsewhere == []
    assert problems == []
