"""The viewer profile panel in a real Chromium: the viewer's avatar (our copy), their conversation
with another account (followed), a note about them, the copy button, the panel remembered closed,
and the bottom sheet on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from accounts.sandbox import PEERS
from accounts.sandbox_media import avatar_url
from inbox.models import Session
from inbox.viewers import avatars
from inbox.viewers.models import Viewer, ViewerNote
from tests.conftest import store_items
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

WANG = PEERS[1]


@pytest.fixture
def two_shops(inbox, sandbox, settings, tmp_path, make_item):
    """王小明 wrote to the synced shop and to a second one, "Flagship"; the agent works on both;
    his avatar is downloaded from the sandbox as the worker would."""
    settings.MEDIA_ROOT = tmp_path / "media"
    flagship = Account.objects.create(
        name="Flagship", app_id="wx_flagship", token="flagship-token", base_url="http://x"
    )
    store_items(
        flagship,
        [
            make_item(
                content__msg__FromUserName={"string": WANG.username},
                content__msg__Content={"string": "旗舰店这边也想问一下"},
                content__msgSessionId="flagship-wang@findermsg",
            )
        ],
        "flagship-1",
    )
    Session.objects.filter(account=flagship).update(peer_nickname=WANG.nickname)
    flagship.members.add(*inbox.members.all())
    viewer = Viewer.objects.get(username=WANG.username)
    Viewer.objects.filter(pk=viewer.pk).update(
        nickname=WANG.nickname, avatar_url_seen=avatar_url(sandbox.base_url, WANG.username)
    )
    assert avatars.fetch_avatar(viewer.pk)
    return flagship


def open_wang(page, account: Account) -> Session:
    session = Session.objects.get(account=account, peer_username=WANG.username)
    page.locator(f"#session-{session.pk}").click()
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/$"))
    return session


def test_profile_panel_follows_the_other_conversation_and_takes_a_note(
    page, live_server, inbox, two_shops, problems
):
    page.set_viewport_size({"width": 1500, "height": 860})  # wide: the panel opens by itself
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, live_server)
    open_wang(page, inbox)
    panel = page.locator("#viewer-panel")
    expect(panel.locator(".viewer-name")).to_have_text(WANG.nickname)
    expect(panel.locator(".viewer-username-text")).to_have_text(WANG.username)
    # Our copy of the picture, never the CDN's (the sandbox's) address.
    picture = panel.locator("img.viewer-avatar")
    assert picture.get_attribute("src").startswith("/viewers/")
    page.wait_for_function(
        "() => document.querySelector('#viewer-panel img.viewer-avatar').naturalWidth === 96"
    )

    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == WANG.username

    panel.get_by_role("textbox", name="New note about this viewer").fill("Prefers SF Express 顺丰")
    panel.get_by_role("button", name="Add note").click()
    note = panel.locator(".viewer-note").first
    expect(note).to_contain_text("Prefers SF Express 顺丰")
    expect(note).to_contain_text("李四")
    assert ViewerNote.objects.get().text == "Prefers SF Express 顺丰"

    other = Session.objects.get(account=two_shops)
    panel.locator(f'a.viewer-conversation[data-session="{other.pk}"]').click()
    expect(page).to_have_url(re.compile(rf"/sessions/{other.pk}/$"))
    expect(page.locator("#thread .messages")).to_contain_text("旗舰店这边也想问一下")
    # The panel of the conversation it opened: the same viewer, the same note.
    expect(panel.locator(".viewer-conversation.is-current")).to_contain_text("Flagship")
    expect(panel.locator(".viewer-note").first).to_contain_text("Prefers SF Express 顺丰")
    assert problems == []


def test_the_panel_stays_closed_once_closed(page, live_server, inbox, two_shops, problems):
    page.set_viewport_size({"width": 1500, "height": 860})
    sign_in(page, live_server)
    session = open_wang(page, inbox)
    toggle = page.locator(f"#thread-header-{session.pk} [data-viewer-panel-toggle]")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.locator("[data-viewer-panel-close]").click()
    expect(page.locator("#viewer-panel")).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.reload()
    expect(page.locator("#thread .thread-title h2")).to_have_text(WANG.nickname)
    expect(page.locator("#viewer-panel")).to_be_hidden()
    page.locator("[data-viewer-panel-toggle]").click()
    expect(page.locator("#viewer-panel .viewer-name")).to_have_text(WANG.nickname)
    assert problems == []


def test_on_a_laptop_the_panel_waits_to_be_asked_and_then_covers_the_threads_edge(
    page, live_server, inbox, two_shops, problems
):
    sign_in(page, live_server)  # 1280 px wide
    session = open_wang(page, inbox)
    panel = page.locator("#viewer-panel")
    expect(panel).to_be_hidden()
    page.locator(f"#thread-header-{session.pk} [data-viewer-panel-toggle]").click()
    expect(panel.locator(".viewer-name")).to_have_text(WANG.nickname)
    thread = page.locator("#thread").bounding_box()
    box = panel.bounding_box()
    assert abs(box["x"] + box["width"] - (thread["x"] + thread["width"])) < 2
    assert problems == []


def test_on_a_phone_the_profile_is_a_bottom_sheet(page, live_server, inbox, two_shops, problems):
    page.set_viewport_size({"width": 390, "height": 780})
    sign_in(page, live_server)
    open_wang(page, inbox)
    sheet = page.locator("#viewer-panel")
    expect(sheet).to_be_hidden()
    page.locator("[data-viewer-panel-toggle]").click()
    expect(sheet.locator(".viewer-name")).to_have_text(WANG.nickname)
    box = sheet.bounding_box()
    assert box["width"] == 390 and abs(box["y"] + box["height"] - 780) < 2
    assert problems == []
