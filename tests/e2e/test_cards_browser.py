"""Share cards in a real Chromium: a thread with a shared Channels video shows its card (cover,
title, author, duration) and one with a shared live its live badge, with no CSP violation or
script error. WeChat's picture CDNs are answered by the test (the sandbox's covers point there,
as real shares do), so the covers are real pictures the browser loads."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.sandbox import PEERS, finder_live_xml, png_bytes
from inbox.sync import sync_account
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

WECHAT_CDNS = ("https://finder.video.qq.com/**", "https://wx.qlogo.cn/**")


@pytest.fixture
def wechat_cdn(page) -> list[str]:
    """Answer WeChat's picture hosts with a PNG; the URLs the page asked for."""
    asked: list[str] = []

    def answer(route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=png_bytes(90, 160, "cover"))

    for pattern in WECHAT_CDNS:
        page.route(pattern, answer)
    return asked


def open_session(page, nickname: str) -> None:
    page.locator(".session-row", has_text=nickname).first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text(nickname)


def test_a_shared_channels_video_shows_its_card_with_cover_title_and_author(
    page, live_server, inbox, wechat_cdn, problems
):
    sign_in(page, live_server)
    open_session(page, PEERS[2].nickname)

    card = page.locator(".share-card.share-video")
    card.scroll_into_view_if_needed()
    expect(card.locator(".share-title")).to_have_text("Spring collection 春季新品")
    expect(card.locator(".share-author")).to_have_text("沙盒小店")
    expect(card.locator(".share-badge")).to_have_text("▶ 0:33")
    expect(card.locator(".app-kind")).to_have_text("shared a Channels video")
    cover = card.locator(".share-cover img")
    expect(cover).to_be_visible()
    cover.evaluate("img => img.decode()")
    assert cover.evaluate("img => img.naturalWidth") == 90
    assert any("/251/20304/stodownload" in url for url in wechat_cdn)
    # A portrait (9:16) video is shown no taller than 3:4.
    box = card.locator(".image-frame").bounding_box()
    assert abs(box["width"] / box["height"] - 3 / 4) < 0.02
    assert "当前微信版本不支持" not in card.inner_text()
    card.screenshot(path=str(SCREENSHOTS / "share_card_video.png"))
    assert problems == []


def test_a_shared_channels_live_shows_its_live_badge(
    page, live_server, inbox, sandbox, wechat_cdn, problems
):
    sandbox.add_letter(
        inbox.app_id,
        finder_live_xml("coupons", desc="今晚8点 福利直播 🎁", nickname="沙盒小店"),
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
    expect(card.locator(".share-cover img")).to_be_visible()
    card.screenshot(path=str(SCREENSHOTS / "share_card_live.png"))
    assert problems == []
