"""Labels in a real Chromium: `l` opens the thread's picker, typing filters it, Enter puts the
label on (chip in the header and the row, an activity line), and the sidebar filters the list by
it. No CSP violation and no script error on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from inbox.labels.models import Label, SessionLabel
from inbox.models import Session
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser


def test_label_a_conversation_with_the_keyboard_and_filter_the_list(
    page, live_server, inbox, problems
):
    Label.objects.create(name="退款", colour="red")
    Label.objects.create(name="VIP", colour="purple")
    Label.objects.create(name="<script>alert(1)</script>", colour="green")
    wang = Session.objects.get(peer_nickname="王小明")

    sign_in(page, live_server)
    page.locator(".session-row", has_text="王小明").first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text("王小明")

    # `l` opens the picker with the search box focused; typing narrows the options.
    page.locator("#thread-scroll").click()
    page.keyboard.press("l")
    search = page.locator("[data-label-search]")
    expect(search).to_be_focused()
    expect(page.locator(".label-option[data-name]")).to_have_count(3)
    expect(page.locator(".label-option", has_text="<script>alert(1)</script>")).to_be_visible()
    search.type("退")
    expect(page.locator(".label-option[data-name]:visible")).to_have_count(1)
    page.keyboard.press("Enter")

    # The chip in the header and the row, the option ticked, the activity line in the thread.
    header = page.locator(f"#thread-labels-{wang.pk}")
    expect(header.locator(".label-chip")).to_have_text("退款")
    expect(page.locator(f"#session-{wang.pk} .label-chip")).to_have_text("退款")
    expect(page.locator(".label-option", has_text="退款")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator("#thread .activity-line").last).to_contain_text("added the label 退款")
    assert SessionLabel.objects.filter(session=wang, label__name="退款").exists()
    expect(search).to_be_focused()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "labels_picker_open.png"))

    # Esc closes the picker; the sidebar's label shows one open conversation and filters by it.
    page.keyboard.press("Escape")
    expect(page.locator(".label-menu[open]")).to_have_count(0)
    link = page.locator("#nav-labels .nav-link", has_text="退款")
    expect(link.locator(".nav-count")).to_have_text("1")
    link.click()
    expect(page.locator("#session-list .session-row")).to_have_count(1)
    expect(page.locator("#session-list .session-row").first).to_contain_text("王小明")
    expect(page).to_have_url(re.compile(r"label=\d+"))
    expect(page.locator(".list-labels .label-chip")).to_contain_text("退款")

    assert problems == []
