"""Django admin for operators: sync health columns, the actions, and a token that never shows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import EXAMPLE_ACCOUNT_FINDER
from inbox import sync, tasks
from inbox.models import Message, Session
from tests.conftest import SANDBOX_TOKEN

CHANGELIST = reverse("admin:accounts_account_changelist")
PROFILE = "/finder/getProfile"


@pytest.fixture
def queued(monkeypatch) -> list:
    calls: list = []
    monkeypatch.setattr(tasks.sync_account, "delay", lambda *args: calls.append(args))
    return calls


def change_url(account: Account) -> str:
    return reverse("admin:accounts_account_change", args=[account.pk])


def run_action(admin_client, action: str, accounts, **extra):
    return admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [account.pk for account in accounts], **extra},
        follow=True,
    )


def assert_no_token(response, token: str = SANDBOX_TOKEN) -> str:
    html = response.content.decode()
    assert token not in html
    return html


# --- the list ----------------------------------------------------------------------------------


def test_account_list_shows_health_and_counts(admin_client, synced):
    Account.objects.filter(pk=synced.pk).update(
        last_error="UpstreamRejected: ret=500: 系统繁忙，请稍后再试 " + "and more words " * 20,
        failure_streak=2,
        own_username=EXAMPLE_ACCOUNT_FINDER,
    )

    response = admin_client.get(CHANGELIST)

    html = assert_no_token(response)
    assert response.context["cl"].result_list[0].letter_count == Message.objects.count() == 23
    assert response.context["cl"].result_list[0].session_count == Session.objects.count()
    assert EXAMPLE_ACCOUNT_FINDER in html
    assert "Backing off" in html
    assert "系统繁忙" in html
    cell_pattern = r'<td class="field-short_last_error"><span title="[^"]*">([^<]*)</span>'
    [cell] = re.findall(cell_pattern, html)
    assert cell.startswith("UpstreamRejected: ret=500: 系统繁忙") and len(cell) <= 60


def test_account_list_takes_the_same_queries_for_many_accounts_as_for_one(
    admin_client, synced, queued
):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(queries)

    one = list_queries()
    for n in range(10):
        Account.objects.create(name=f"Shop {n}", app_id=f"wx_{n}", token=f"secret-{n}")
    assert list_queries() == one


def test_account_list_sorts_by_letter_count(admin_client, synced):
    Account.objects.create(name="Empty", app_id="wx_empty", token="secret-2")
    order = list(admin_client.get(CHANGELIST, {"o": "-10"}).context["cl"].result_list)
    assert [account.letter_count for account in order] == [23, 0]


def test_a_paused_account_says_why_in_the_list(admin_client, account, sandbox):
    sandbox.inject("token_expired")
    tasks.sync_account(account.pk)

    html = assert_no_token(admin_client.get(CHANGELIST))

    assert "Paused:" in html
    assert "不可用或已过期" in html
    assert "[redacted]" in html
    assert admin_client.get(CHANGELIST, {"state": "paused"}).context["cl"].result_count == 1


# --- the token -----------------------------------------------------------------------------------


def test_the_token_is_never_in_the_change_form_or_history(admin_client, account):
    form = admin_client.get(change_url(account))
    assert_no_token(form)
    assert 'name="token"' in form.content.decode()

    data = {
        "name": "Renamed shop",
        "app_id": account.app_id,
        "token": "",
        "base_url": account.base_url,
        "poll_interval": 5,
        "enabled": "on",
        "own_username": "",
        "nickname": "",
    }
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert (account.name, account.token) == ("Renamed shop", SANDBOX_TOKEN)  # empty keeps it

    admin_client.post(change_url(account), {**data, "token": "new-token-77aa"})
    account.refresh_from_db()
    assert account.token == "new-token-77aa"

    for page in (
        change_url(account),
        reverse("admin:accounts_account_history", args=[account.pk]),
        CHANGELIST,
    ):
        assert_no_token(admin_client.get(page), "new-token-77aa")
        assert_no_token(admin_client.get(page), SANDBOX_TOKEN)


# --- actions -----------------------------------------------------------------------------------


def test_sync_now_queues_a_pass_when_the_request_commits(
    admin_client, account, django_capture_on_commit_callbacks, queued
):
    paused = Account.objects.create(
        name="Paused", app_id="wx_paused", token="secret-9", paused_reason="token rejected"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "sync_now", [account, paused])

    assert queued == [(account.pk,)]
    html = assert_no_token(response)
    assert "Queued a sync of 1 account." in html
    assert "resume it first" in html


def test_pause_and_resume(admin_client, account):
    run_action(admin_client, "pause_sync", [account])
    account.refresh_from_db()
    assert not account.enabled
    assert not Account.objects.due_for_sync().exists()

    Account.objects.filter(pk=account.pk).update(
        paused_reason="UpstreamRejected: token rejected",
        next_sync_at=timezone.now() + timedelta(hours=1),
    )
    response = run_action(admin_client, "resume_sync", [account])

    assert_no_token(response)
    account.refresh_from_db()
    assert (account.enabled, account.paused_reason, account.next_sync_at) == (True, "", None)
    assert list(Account.objects.due_for_sync()) == [account]
    assert LogEntry.objects.filter(object_id=str(account.pk)).count() == 2


def test_reset_cursor_asks_first_and_explains(admin_client, synced):
    response = admin_client.post(
        CHANGELIST, {"action": "reset_cursor", "_selected_action": [synced.pk]}
    )

    html = assert_no_token(response)
    assert response.status_code == 200
    assert "re-read" in html
    assert "Nothing is duplicated" in html
    assert 'name="confirmed" value="yes"' in html
    assert Account.objects.get(pk=synced.pk).key_buff == synced.key_buff != ""


def test_reset_cursor_rereads_history_without_duplicating_anything(admin_client, synced):
    before = {
        "messages": Message.objects.count(),
        "sessions": list(
            Session.objects.order_by("pk").values_list(
                "unread_count", "last_message_preview", "last_message_at"
            )
        ),
    }

    response = run_action(admin_client, "reset_cursor", [synced], confirmed="yes")

    assert_no_token(response)
    assert "Reset the cursor of 1 account" in response.content.decode()
    account = Account.objects.get(pk=synced.pk)
    assert (account.key_buff, account.next_sync_at) == ("", None)
    while not sync.sync_account(account).caught_up:
        pass
    assert Message.objects.count() == before["messages"]
    assert Message.objects.values("new_msg_id").distinct().count() == before["messages"]
    assert before["sessions"] == list(
        Session.objects.order_by("pk").values_list(
            "unread_count", "last_message_preview", "last_message_at"
        )
    )


def test_reset_cursor_leaves_an_account_that_is_being_synced(admin_client, synced):
    with sync.account_lease(synced):
        response = run_action(admin_client, "reset_cursor", [synced], confirmed="yes")

    assert "being synced right now" in response.content.decode()
    assert Account.objects.get(pk=synced.pk).key_buff == synced.key_buff


def test_check_connection_stores_the_accounts_own_name_and_nickname(admin_client, account, sandbox):
    response = run_action(admin_client, "check_connection", [account])

    html = assert_no_token(response)
    account.refresh_from_db()
    assert account.own_username == EXAMPLE_ACCOUNT_FINDER
    assert account.nickname == "沙盒小店"
    assert "connected as 沙盒小店" in html
    assert len(sandbox.calls_to(PROFILE)) == 1


def test_check_connection_shows_the_upstreams_refusal_without_the_token(
    admin_client, account, sandbox
):
    sandbox.inject("token_expired", path=PROFILE)

    response = run_action(admin_client, "check_connection", [account])

    html = assert_no_token(response)
    assert "不可用或已过期" in html
    assert "[redacted]" in html
    account.refresh_from_db()
    assert account.own_username == ""


def test_check_connection_with_a_wrong_token_says_so(admin_client, account, sandbox):
    Account.objects.filter(pk=account.pk).update(token="wrong-token-5555")
    response = run_action(admin_client, "check_connection", [account])

    html = assert_no_token(response, "wrong-token-5555")

    assert "connection check failed" in html


def test_check_connection_of_an_unreachable_upstream_says_so(admin_client, account):
    Account.objects.filter(pk=account.pk).update(base_url="http://127.0.0.1:9/finder/v2/api")

    html = assert_no_token(run_action(admin_client, "check_connection", [account]))

    assert "connection check failed" in html


def test_actions_need_a_staff_user_with_change_permission(client, django_user_model, account):
    staff = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    client.force_login(staff)

    response = run_action(client, "pause_sync", [account])

    assert response.status_code == 403
    assert Account.objects.get(pk=account.pk).enabled


# --- sessions and messages at scale --------------------------------------------------------


@pytest.mark.parametrize(
    "name, params",
    [
        ("admin:inbox_session_changelist", {}),
        ("admin:inbox_session_changelist", {"q": "王小明"}),
        ("admin:inbox_message_changelist", {}),
        ("admin:inbox_message_changelist", {"q": "not-a-number"}),
        ("admin:inbox_message_changelist", {"created_at__year": "2024"}),
        ("admin:inbox_quarantineditem_changelist", {}),
    ],
)
def test_session_and_message_lists_render_in_bounded_queries(
    admin_client, synced, name, params, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(name), params)
    assert response.status_code == 200
    assert_no_token(response)


def test_session_and_message_change_forms_render(admin_client, synced):
    session = Session.objects.first()
    message = Message.objects.filter(msg_type=Message.Type.IMAGE).first()
    for url in (
        reverse("admin:inbox_session_change", args=[session.pk]),
        reverse("admin:inbox_message_change", args=[message.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert_no_token(response)
