"""An account whose device is offline: loud (inbox banner for its members, red in admin, listed by
/healthz), probed by itself, over at the first success. A rejected token still pauses, until the
token is replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import browse, sync, tasks
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

BANNER = 'id="outage-banner"'


def go_offline(account: Account, sandbox) -> Account:
    sandbox.set_device(SANDBOX_APP_ID, "offline")
    with pytest.raises(sync.SyncFailed):
        sync.sync_account(account)
    account.refresh_from_db()
    return account


def banner_of(html: str) -> str:
    start = html.index(BANNER)
    return html[start : html.index("</div>", start)]


def test_members_see_a_banner_naming_the_offline_account_and_since_when(
    member_client, synced, sandbox
):
    synced = go_offline(synced, sandbox)

    html = member_client.get(reverse("inbox:index")).content.decode()

    banner = banner_of(html)
    assert "Test shop" in banner and "offline since" in banner
    assert synced.outage_since.strftime("%Y-%m-%d") in banner
    assert "hidden" not in banner
    assert "微信已离线" not in html and SANDBOX_TOKEN not in html


def test_the_banner_is_hidden_when_every_account_is_up(member_client, synced):
    html = member_client.get(reverse("inbox:index")).content.decode()

    assert "hidden" in banner_of(html)
    assert "offline since" not in html


def test_an_outsider_sees_no_banner_for_an_account_they_are_not_in(
    client, synced, sandbox, outsider
):
    go_offline(synced, sandbox)
    client.force_login(outsider)

    html = client.get(reverse("inbox:index")).content.decode()

    assert "Test shop" not in html
    assert "hidden" in banner_of(html)


def test_the_list_poll_brings_the_banner_when_an_outage_begins_and_ends(
    member_client, synced, sandbox, django_assert_max_num_queries
):
    # A cursor past every session change: only the banner can have news.
    poll = {"since": browse.to_micros(timezone.now() + timedelta(hours=1))}
    with django_assert_max_num_queries(4):  # sign-in session, user, sessions, accounts down
        assert member_client.get(reverse("inbox:sessions_poll"), poll).status_code == 204

    go_offline(synced, sandbox)
    response = member_client.get(reverse("inbox:sessions_poll"), poll, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    banner = banner_of(response.content.decode())
    assert 'hx-swap-oob="true"' in banner and "Test shop" in banner
    down = response.context["down_ids"]
    assert down == str(synced.pk)
    # The page now shows it: nothing more to say until it changes again.
    assert (
        member_client.get(reverse("inbox:sessions_poll"), {**poll, "down": down}).status_code == 204
    )

    sandbox.set_device(SANDBOX_APP_ID, "online")
    sync.sync_account(synced)
    response = member_client.get(
        reverse("inbox:sessions_poll"), {**poll, "down": down}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "hidden" in banner_of(response.content.decode())


def test_admin_shows_an_offline_account_in_red_and_filters_by_it(client, synced, sandbox):
    go_offline(synced, sandbox)
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(admin)

    html = client.get(reverse("admin:accounts_account_changelist")).content.decode()
    assert 'class="account-outage"' in html and "Offline since" in html
    assert "accounts/admin.css" in html
    only_down = client.get(reverse("admin:accounts_account_changelist"), {"state": "outage"})
    assert list(only_down.context["cl"].result_list) == [synced]


# --- a rejected token pauses until the token is replaced ---------------------------------------


def test_a_rejected_token_pauses_and_replacing_the_token_resumes(account, sandbox, monkeypatch):
    monkeypatch.setattr(tasks.fill_peer_nicknames, "delay", lambda *args: None)
    Account.objects.filter(pk=account.pk).update(token="an-old-token")
    tasks.sync_account(account.pk)
    account.refresh_from_db()
    assert account.paused_reason and account.outage_since is None
    assert not Account.objects.due_for_sync().exists()

    call_command(
        "add_account",
        name="Test shop",
        app_id=SANDBOX_APP_ID,
        token=SANDBOX_TOKEN,
        base_url=account.base_url,
    )

    account.refresh_from_db()
    assert (account.paused_reason, account.failure_streak, account.next_sync_at) == ("", 0, None)
    assert Account.objects.due_for_sync().filter(pk=account.pk).exists()
    tasks.sync_account(account.pk)
    account.refresh_from_db()
    assert account.last_success_at is not None


def test_saving_an_account_without_changing_its_token_keeps_the_pause(account):
    Account.objects.filter(pk=account.pk).update(paused_reason="token rejected")
    account = Account.objects.get(pk=account.pk)
    account.name = "Renamed"
    account.save()

    account.refresh_from_db()
    assert account.paused_reason == "token rejected"
