"""The Content-Security-Policy in a real Chromium: the inbox and admin run under it without a
single violation; a too-large upload and a locked-out sign-in explain themselves."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from inbox.models import Session
from tests.e2e.conftest import PASSWORD, SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser


def snapshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_inbox_and_admin_pages_run_under_the_csp_without_a_violation(
    page, live_server, inbox, problems
):
    response = page.goto(f"{live_server.url}/login/")
    csp = response.header_value("content-security-policy")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    sign_in(page, live_server)

    # The inbox: avatars coloured and the image card shaped by data-* attributes.
    avatar = page.locator(".session-row .avatar").first
    expect(avatar).to_be_visible()
    assert avatar.evaluate("el => getComputedStyle(el).getPropertyValue('--hue')").strip()
    page.locator(".session-row", has_text="王小明").first.click()
    card = page.locator(".image-card").first
    expect(card).to_contain_text("160×120")
    box = card.locator(".image-frame").bounding_box()
    assert abs(box["width"] / box["height"] - 160 / 120) < 0.02
    # The thumbnail arrives by itself; "Load image" shows the full picture in the viewer.
    page.wait_for_function("() => document.querySelector('.image-card img')?.naturalWidth > 0")
    card.get_by_role("button", name="Load image").click()
    page.wait_for_function("() => document.querySelector('#lightbox img')?.naturalWidth > 0")
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()
    page.keyboard.press("/")
    page.keyboard.type("优惠券")
    expect(page.locator(".result-message mark").first).to_have_text("优惠券")
    snapshot(page, "csp_inbox")

    # Admin, as a superuser: lists, forms with their widgets, the lockout list.
    User.objects.create_superuser("root", password=PASSWORD)
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#id_username").fill("root")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page.locator("#site-name")).to_be_visible()
    session = Session.objects.filter(account=inbox).first()
    for path in [
        "/admin/",
        "/admin/accounts/account/",
        f"/admin/accounts/account/{inbox.pk}/change/",
        "/admin/inbox/session/",
        f"/admin/inbox/session/{session.pk}/change/",
        "/admin/inbox/message/",
        "/admin/auth/user/add/",
        "/admin/auth/user/",
        "/admin/axes/accessattempt/",
        "/admin/accounts/auditevent/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("load")
    # The date and time widgets build their own DOM and style it from script; open them too.
    page.goto(f"{live_server.url}/admin/inbox/session/{session.pk}/change/")
    page.locator("a[id^=calendarlink]").first.click()
    expect(page.locator(".calendarbox").first).to_be_visible()
    page.locator("a[id^=clocklink]").first.click()
    expect(page.locator(".clockbox").first).to_be_visible()
    snapshot(page, "csp_admin")

    assert problems == []


def test_a_too_large_image_is_refused_with_the_servers_reason(
    page, live_server, inbox, settings, problems
):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    sign_in(page, live_server)
    page.locator(".session-row", has_text="Tom Zhang").first.click()
    expect(page.locator("#thread .thread-title h2")).to_have_text("Tom Zhang")
    before = inbox.sessions.get(peer_nickname="Tom Zhang").messages.count()

    page.locator("#thread-footer input[type=file]").set_input_files(
        files=[{"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(7 << 20)}]
    )

    error = page.locator("#thread-footer .composer-error .form-error")
    expect(error).to_have_text(re.compile(r"The upload is too large \(7\.0\sMB\)\."))
    expect(error).to_contain_text("Images can be at most 5.0")
    expect(page.locator("#thread-footer input[type=file]")).to_have_value("")
    assert inbox.sessions.get(peer_nickname="Tom Zhang").messages.count() == before
    assert problems == []


def test_a_locked_out_sign_in_says_so(page, live_server, inbox, problems):
    for n in range(5):
        page.goto(f"{live_server.url}/login/")
        page.locator("#id_username").fill("agent")
        page.locator("#id_password").fill(f"wrong-{n}")
        page.locator("button[type=submit]").click()
        expect(page.locator(".form-error")).to_be_visible()

    page.goto(f"{live_server.url}/login/")
    page.locator("#id_username").fill("agent")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()

    expect(page.locator("h1")).to_have_text("Sign-in locked")
    expect(page.get_by_role("alert")).to_contain_text("blocked for 15 minutes")
    expect(page.get_by_role("link", name="Back to sign-in")).to_be_visible()
    assert problems == []
