"""Organising the list in a real Chromium: select conversations (a tick, then Shift+click for the
range), resolve them in one action and see the count; save the list's filter as a view and open
it again from the sidebar. No CSP violation or script error along the way."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Account
from inbox.labels.models import Label, SessionLabel
from inbox.models import Message, Session
from inbox.organize.models import SavedView
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_bulk_resolve_three_conversations_with_a_shift_click_range(
    page, live_server, inbox, problems
):
    sign_in(page, live_server)
    picks = page.locator("#session-list .session-pick")
    expect(picks.first).to_be_visible()
    assert picks.count() >= 4
    bar = page.locator("#bulk-form")
    expect(bar).to_be_hidden()

    picks.nth(0).check()
    expect(bar).to_be_visible()
    expect(bar.locator("[data-bulk-count]")).to_have_text("1 selected")
    picks.nth(2).click(modifiers=["Shift"])
    expect(bar.locator("[data-bulk-count]")).to_have_text("3 selected")
    for n in range(3):
        expect(picks.nth(n)).to_be_checked()
    expect(picks.nth(3)).not_to_be_checked()
    chosen = [int(picks.nth(n).get_attribute("value")) for n in range(3)]

    bar.get_by_role("button", name="Resolve").click()
    expect(page.locator("#bulk-status")).to_have_text("3 conversations resolved")
    expect(bar).to_be_hidden()
    for pk in chosen:
        expect(page.locator(f"#session-{pk} .status")).to_have_text("Resolved")
        expect(page.locator(f"#session-item-{pk} .session-pick")).not_to_be_checked()
    # The sidebar's counts follow (the list's poll is asked at once).
    expect(
        page.locator("#nav-status .nav-link", has_text="Resolved").locator(".nav-count")
    ).to_have_text("3")
    assert set(Session.objects.filter(status="resolved").values_list("pk", flat=True)) == set(
        chosen
    )
    assert Message.objects.filter(activity=Message.Activity.RESOLVED).count() == 3
    assert problems == []


def test_select_all_on_the_page_and_clear(page, live_server, inbox, problems):
    sign_in(page, live_server)
    rows = page.locator("#session-list .session-pick").count()
    page.locator("#select-all").check()
    expect(page.locator("#bulk-form [data-bulk-count]")).to_have_text(f"{rows} selected")
    page.get_by_role("button", name="Clear selection").click()
    expect(page.locator("#bulk-form")).to_be_hidden()
    expect(page.locator("#session-list .session-pick:checked")).to_have_count(0)
    assert problems == []


def test_save_a_view_and_reopen_it_from_the_sidebar(page, live_server, inbox, problems):
    sign_in(page, live_server)
    page.locator("#nav-status .nav-link", has_text="Open").click()
    expect(page.locator(".list-title")).to_have_text("Open")
    page.locator("#save-view-menu summary").click()
    page.locator("#save-view-name").fill("待处理 <b>VIP</b>")
    page.get_by_label("Share with the team").check()
    page.locator("#save-view-form").get_by_role("button", name="Save").click()
    expect(page.locator("#save-view-status")).to_contain_text("Saved.")
    saved = page.locator("#nav-saved-views .nav-link", has_text="待处理 <b>VIP</b>")
    expect(saved).to_be_visible()
    expect(saved.locator(".nav-count")).to_have_text(
        str(Session.objects.filter(status="open").count())
    )
    view = SavedView.objects.get()
    assert (view.view, view.shared, view.name) == ("open", True, "待处理 <b>VIP</b>")

    page.locator("#nav-views .nav-link", has_text="All conversations").click()
    expect(page.locator(".list-title")).to_have_text("All conversations")
    saved.click()
    expect(page.locator(".list-title")).to_have_text("Open")
    expect(page).to_have_url(re.compile(r"\?view=open$"))
    expect(page.locator("#nav-saved-views .nav-link.is-active")).to_have_text(re.compile("待处理"))
    assert problems == []


def test_selecting_with_the_keyboard(page, live_server, inbox, problems):
    """Space ticks a focused row, Shift+Space ticks the range up to it, `x` the open one."""
    sign_in(page, live_server)
    picks = page.locator("#session-list .session-pick")
    picks.nth(0).focus()
    page.keyboard.press("Space")
    picks.nth(2).focus()
    page.keyboard.press("Shift+Space")
    count = page.locator("#bulk-form [data-bulk-count]")
    expect(count).to_have_text("3 selected")
    page.locator("#session-list .session-row").nth(4).click()
    expect(page.locator("#thread .thread-title h2")).to_be_visible()
    page.locator("#thread .thread-title h2").click()
    page.keyboard.press("x")
    expect(count).to_have_text("4 selected")
    expect(picks.nth(4)).to_be_checked()
    assert problems == []


def test_a_forged_selection_is_refused_with_a_message(page, live_server, inbox, problems):
    """A checkbox whose value was changed to another account's conversation: the server
    refuses the whole action and the bar says why; nothing changes."""
    other = Account.objects.create(name="Other shop", app_id="wx_forged", token="t")
    foreign = Session.objects.create(
        account=other, msg_session_id="forged@findermsg", last_message_at=timezone.now()
    )
    sign_in(page, live_server)
    picks = page.locator("#session-list .session-pick")
    picks.nth(0).check()
    picks.nth(1).evaluate("(box, pk) => { box.value = String(pk); }", foreign.pk)
    picks.nth(1).check()
    page.locator("#bulk-form").get_by_role("button", name="Resolve").click()
    expect(page.locator("#bulk-status .is-error")).to_have_text(
        "1 of the selected conversations is not one you may change, or no longer exists. "
        "Nothing was changed."
    )
    assert not Session.objects.filter(status="resolved").exists()
    # A refused request is an answer, not a script error; the 404 is the only console line.
    assert problems == []


def test_assign_and_label_from_the_bars_more_menu(page, live_server, inbox, problems):
    colleague = User.objects.create_user("wang", first_name="王五")
    inbox.members.add(colleague)
    Label.objects.create(name="退款", colour=Label.Colour.values[0])
    sign_in(page, live_server)
    picks = page.locator("#session-list .session-pick")
    picks.nth(0).check()
    picks.nth(1).check()
    bar = page.locator("#bulk-form")
    bar.locator("[data-bulk-more] summary").click()
    bar.locator("#bulk-assign-to").select_option(label="王五")
    bar.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#bulk-status")).to_have_text("2 conversations assigned to 王五")
    picks.nth(0).check()
    bar.locator("[data-bulk-more] summary").click()
    bar.locator("#bulk-apply-label").select_option(label="退款")
    bar.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#bulk-status")).to_have_text("Label 退款 added to 1 conversation")
    assert Session.objects.filter(assignee=colleague).count() == 2
    assert SessionLabel.objects.count() == 1
    assert problems == []
