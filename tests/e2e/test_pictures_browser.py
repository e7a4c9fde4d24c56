"""Pictures in a real Chromium: a thread's thumbnails arrive without a click, "Load image" opens
the full-size picture in the lightbox, whose keys step through the thread's pictures, zoom, and
close it without closing the thread."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.sandbox import IMAGE_XML, PEERS
from inbox.models import Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

# The scripted conversation's photo-1 comes first in 王小明's thread; these follow it.
PHOTOS = [("p1", 120, 160), ("p2", 160, 90), ("p3", 100, 100)]


def add_photos(sandbox, account) -> None:
    for name, width, height in PHOTOS:
        xml = IMAGE_XML.format(
            key=name.ljust(32, "0"),
            url=f"3057{name}",
            width=width,
            height=height,
            thumb_length=width * height // 12,
            length=width * height * 2,
            hd_length=width * height * 5,
            md5=name.ljust(32, "0"),
        )
        sandbox.add_letter(SANDBOX_APP_ID, xml, peer=PEERS[1], msg_type=3)
    sync_account(account)


def test_thumbnails_arrive_by_themselves_and_open_in_the_lightbox(
    page, live_server, inbox, sandbox, problems
):
    add_photos(sandbox, inbox)
    session = Session.objects.get(peer_nickname="王小明")
    sign_in(page, live_server)
    page.locator(".session-row", has_text="王小明").first.click()

    # No click: the thread's poll swaps each placeholder for its stored thumbnail.
    cards = page.locator("#thread .image-card")
    expect(cards).to_have_count(4)
    thumbnails = page.locator("#thread .image-card img")
    expect(thumbnails).to_have_count(4, timeout=10_000)
    for index in range(4):
        expect(thumbnails.nth(index)).to_have_attribute(
            "src", re.compile(r"^/messages/\d+/picture/thumb/\?v=")
        )
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#thread .image-card img'))"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert sandbox.base_url not in page.content()

    # "Load image" fetches the full size and shows it in the lightbox.
    cards.last.get_by_role("button", name="Load image").click()
    lightbox = page.locator("#lightbox")
    picture = lightbox.locator("[data-lightbox-image]")
    expect(lightbox).to_be_visible()
    expect(picture).to_have_attribute("src", re.compile(r"/picture/full/\?v="))
    expect(lightbox.locator("[data-lightbox-count]")).to_have_text("Picture 4 of 4")
    page.wait_for_function("() => document.querySelector('#lightbox img').naturalWidth >= 300")
    expect(lightbox.get_by_role("button", name="Load image")).to_be_hidden()
    expect(lightbox.locator("[data-lightbox-note]")).to_be_hidden()
    expect(lightbox.get_by_role("button", name="Close")).to_be_focused()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pictures_lightbox.png"))

    # Zoom with the keys and the buttons.
    page.keyboard.press("+")
    expect(picture).to_have_class(re.compile(r"\bis-zoomed\b"))
    zoomed = picture.bounding_box()["width"]
    page.keyboard.press("0")
    expect(picture).not_to_have_class(re.compile(r"\bis-zoomed\b"))
    assert picture.bounding_box()["width"] < zoomed
    lightbox.get_by_role("button", name="Zoom in").click()
    expect(picture).to_have_class(re.compile(r"\bis-zoomed\b"))

    # ← and → step through the thread's pictures; one without its full size shows its preview.
    page.keyboard.press("ArrowLeft")
    expect(lightbox.locator("[data-lightbox-count]")).to_have_text("Picture 3 of 4")
    expect(picture).to_have_attribute("src", re.compile(r"/picture/thumb/\?v="))
    expect(picture).not_to_have_class(re.compile(r"\bis-zoomed\b"))
    expect(lightbox.locator("[data-lightbox-note]")).to_be_visible()
    expect(lightbox.get_by_role("button", name="Load image")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(lightbox.locator("[data-lightbox-count]")).to_have_text("Picture 1 of 4")
    expect(lightbox.get_by_role("button", name="Previous picture")).to_be_disabled()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(lightbox.locator("[data-lightbox-count]")).to_have_text("Picture 4 of 4")
    expect(picture).to_have_attribute("src", re.compile(r"/picture/full/\?v="))
    lightbox.get_by_role("button", name="Zoom in").click()
    lightbox.get_by_role("button", name="Zoom in").click()
    expect(picture).to_have_class(re.compile(r"\bis-zoomed\b"))
    box = picture.bounding_box()
    assert box["width"] > 480 * 1.4
    # Zoomed about the middle: the picture's centre stays in the middle of the stage.
    stage = lightbox.locator("[data-lightbox-stage]").bounding_box()
    assert abs(box["y"] + box["height"] / 2 - (stage["y"] + stage["height"] / 2)) < 20
    assert abs(box["x"] + box["width"] / 2 - (stage["x"] + stage["width"] / 2)) < 20
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pictures_lightbox_zoomed.png"))

    # Tab stays inside the lightbox.
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate(
            "() => document.getElementById('lightbox').contains(document.activeElement)"
        )

    # Esc closes the lightbox, not the thread (inbox.js's Esc would).
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(page.locator("#thread")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/$"))

    # A click on a stored picture opens the lightbox straight away.
    cards.first.locator("a.picture-open").click()
    expect(lightbox).to_be_visible()
    expect(lightbox.locator("[data-lightbox-count]")).to_have_text("Picture 1 of 4")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    assert problems == []
