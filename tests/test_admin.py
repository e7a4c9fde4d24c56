"""Django admin for operators: sync health columns, the actions, a token that never shows, and
each staff user limited to the accounts they are a member of."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.admin import sends_token_in_clear
from accounts.models import Account, AuditEvent
from accounts.sandbox import EXAMPLE_ACCOUNT_FINDER
from inbox import sync, tasks
from inbox.models import CannedReply, Message, QuarantinedItem, Session
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

    admin_client.get(CHANGELIST)  # the first request may refresh the session's expiry
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


# --- who sees and changes what -------------------------------------------------------------------

OTHER_APP_ID = "wx_other_shop"
OTHER_TOKEN = "other-shop-token-4e7b"
STAFF_PERMISSIONS = [
    "view_account",
    "change_account",
    "view_session",
    "change_session",
    "view_message",
    "change_message",
    "view_quarantineditem",
    "view_cannedreply",
    "add_cannedreply",
    "change_cannedreply",
    "delete_cannedreply",
]


def staff_user(django_user_model, username: str, permissions: list[str]):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    return user


@pytest.fixture
def other(sandbox, sandbox_server, synced) -> Account:
    """A second account, synced, with a member of its own; the staff user is not one."""
    sandbox.add_account(OTHER_APP_ID, OTHER_TOKEN, example=False)
    other = Account.objects.create(
        name="Other shop", app_id=OTHER_APP_ID, token=OTHER_TOKEN, base_url=sandbox_server.base_url
    )
    sync.sync_account(other)
    other.refresh_from_db()
    for account in (synced, other):
        QuarantinedItem.objects.create(
            account=account, fingerprint=f"f{account.pk}", raw={"bad": 1}, error="no NewMsgId"
        )
        CannedReply.objects.create(account=account, title=f"{account.name} greeting", text="您好")
    CannedReply.objects.create(title="Shared thanks", text="谢谢")
    return other


@pytest.fixture
def staff(django_user_model, synced):
    """A staff user with change and view permissions, a member of the synced account only."""
    user = staff_user(django_user_model, "agent", STAFF_PERMISSIONS)
    synced.members.add(user)
    return user


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def other_rows(other: Account) -> dict[str, object]:
    return {
        "accounts_account": other,
        "inbox_session": Session.objects.filter(account=other).first(),
        "inbox_message": Message.objects.filter(account=other).first(),
        "inbox_quarantineditem": QuarantinedItem.objects.get(account=other),
        "inbox_cannedreply": CannedReply.objects.get(account=other),
    }


@pytest.mark.parametrize(
    "name, params",
    [
        ("admin:accounts_account_changelist", {}),
        ("admin:accounts_account_changelist", {"q": "shop"}),
        # The raw-id lookup popup of an account field.
        ("admin:accounts_account_changelist", {"_popup": "1", "_to_field": "id"}),
        ("admin:inbox_session_changelist", {}),
        ("admin:inbox_message_changelist", {}),
        ("admin:inbox_quarantineditem_changelist", {}),
        ("admin:inbox_cannedreply_changelist", {}),
    ],
)
def test_a_staff_user_sees_only_their_own_accounts_rows_in_lists_and_filters(
    staff_client, synced, other, name, params
):
    response = staff_client.get(reverse(name), params)

    html = assert_no_token(response)
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows
    for row in rows:
        account_id = row.pk if isinstance(row, Account) else row.account_id
        assert account_id in (synced.pk, None)
    assert "Other shop" not in html  # neither a row nor a filter choice
    assert OTHER_APP_ID not in html


def test_a_superuser_sees_every_accounts_rows(admin_client, synced, other):
    for name in ("admin:accounts_account_changelist", "admin:inbox_session_changelist"):
        response = admin_client.get(reverse(name))
        rows = response.context["cl"].result_list
        accounts = {getattr(row, "account_id", row.pk) for row in rows}
        assert accounts == {synced.pk, other.pk}
        assert "Other shop" in response.content.decode()


@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize(
    "model",
    [
        "accounts_account",
        "inbox_session",
        "inbox_message",
        "inbox_quarantineditem",
        "inbox_cannedreply",
    ],
)
def test_another_accounts_admin_pages_are_404_for_a_staff_user(
    staff_client, admin_client, other, model, view
):
    url = reverse(f"admin:{model}_{view}", args=[other_rows(other)[model].pk])

    assert staff_client.get(url).status_code == 404
    assert staff_client.post(url, {"post": "yes"}).status_code in (403, 404)
    assert admin_client.get(url).status_code == 200


def test_a_forged_selection_cannot_act_on_another_account(staff_client, other):
    run_action(staff_client, "pause_sync", [other])
    run_action(staff_client, "reset_cursor", [other], confirmed="yes")

    other.refresh_from_db()
    assert other.enabled
    assert other.key_buff != ""
    assert not AuditEvent.objects.exists()


def test_a_staff_user_cannot_add_an_account(staff_client, staff):
    add = reverse("admin:accounts_account_add")
    form = {"name": "Mine now", "app_id": "wx_mine", "token": "t", "poll_interval": 5}

    assert staff_client.get(add).status_code == 403
    assert staff_client.post(add, form).status_code == 403
    assert not Account.objects.filter(app_id="wx_mine").exists()


def test_a_forged_post_cannot_change_where_the_token_goes_or_who_reads_the_account(
    staff_client, staff, synced, other, django_user_model
):
    accomplice = django_user_model.objects.create_user("accomplice")
    page = staff_client.get(change_url(synced))
    html = assert_no_token(page)
    assert 'name="base_url"' not in html
    assert 'name="app_id"' not in html
    assert 'name="members"' not in html
    assert 'name="token"' not in html

    response = staff_client.post(
        change_url(synced),
        {
            "name": "Renamed by staff",
            "app_id": "wx_attacker",
            "base_url": "http://attacker.example/finder/v2/api",
            "token": "attacker-token-0000",
            "members": [staff.pk, accomplice.pk],
            "poll_interval": 5,
            "enabled": "on",
        },
    )

    assert response.status_code == 302
    account = Account.objects.get(pk=synced.pk)
    assert account.name == "Renamed by staff"
    assert (account.app_id, account.base_url, account.token) == (
        synced.app_id,
        synced.base_url,
        SANDBOX_TOKEN,
    )
    assert list(account.members.all()) == [staff]
    assert not AuditEvent.objects.exists()


def test_a_view_only_staff_user_never_sees_the_token(client, django_user_model, synced):
    viewer = staff_user(django_user_model, "viewer", ["view_account"])
    synced.members.add(viewer)
    client.force_login(viewer)

    response = client.get(change_url(synced))

    assert response.status_code == 200
    html = assert_no_token(response)
    assert synced.app_id in html  # the read-only page is there, without the token


def test_foreign_keys_offer_and_accept_only_the_staff_users_accounts(staff_client, synced, other):
    add = reverse("admin:inbox_cannedreply_add")
    form = staff_client.get(add).context["adminform"].form
    assert list(form.fields["account"].queryset) == [synced]
    assert form.fields["account"].required

    for account in (other.pk, ""):
        response = staff_client.post(add, {"title": "Forged", "text": "x", "account": account})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["account"]
    assert not CannedReply.objects.filter(title="Forged").exists()
    response = staff_client.post(add, {"title": "Mine", "text": "x", "account": synced.pk})
    assert response.status_code == 302
    assert CannedReply.objects.get(title="Mine").account == synced

    other_session = Session.objects.filter(account=other).first()
    own_message = Message.objects.filter(account=synced).first()
    page = staff_client.get(reverse("admin:inbox_message_change", args=[own_message.pk]))
    fields = page.context["adminform"].form.fields
    assert list(fields["account"].queryset) == [synced]
    assert not fields["session"].queryset.filter(pk=other_session.pk).exists()
    # A raw-id field names only rows the user may see, even when handed another's id.
    assert fields["session"].widget.label_and_url_for_value(other_session.pk) == ("", "")
    assert fields["session"].widget.label_and_url_for_value(own_message.session_id)[0]


def test_shared_canned_replies_are_read_only_for_staff(staff_client, other):
    shared = CannedReply.objects.get(account=None)
    url = reverse("admin:inbox_cannedreply_change", args=[shared.pk])

    page = staff_client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert staff_client.post(url, {"title": "Hijacked", "text": "x"}).status_code == 403
    delete = reverse("admin:inbox_cannedreply_delete", args=[shared.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = staff_client.post(
        reverse("admin:inbox_cannedreply_changelist"),
        {"action": "delete_selected", "_selected_action": [shared.pk], "post": "yes"},
    )
    assert bulk.status_code == 403
    assert CannedReply.objects.get(pk=shared.pk).title == "Shared thanks"


# --- moving the token ----------------------------------------------------------------------------


def account_form(account: Account, **changes) -> dict:
    return {
        "name": account.name,
        "app_id": account.app_id,
        "token": "",
        "base_url": account.base_url,
        "poll_interval": 5,
        "enabled": "on",
        **changes,
    }


@pytest.mark.parametrize(
    "change",
    [{"base_url": "https://elsewhere.example/finder/v2/api"}, {"app_id": "wx_moved"}],
    ids=["base_url", "app_id"],
)
def test_moving_the_token_needs_it_entered_again(admin_client, synced, change):
    refused = admin_client.post(change_url(synced), account_form(synced, **change))

    assert refused.status_code == 200
    assert "Enter the token again to change the" in refused.content.decode()
    assert Account.objects.get(pk=synced.pk).base_url == synced.base_url
    assert Account.objects.get(pk=synced.pk).app_id == synced.app_id

    accepted = admin_client.post(
        change_url(synced), account_form(synced, token="moved-token-4c4c", **change)
    )

    assert accepted.status_code == 302
    account = Account.objects.get(pk=synced.pk)
    [(field, value)] = change.items()
    assert (getattr(account, field), account.token) == (value, "moved-token-4c4c")


@pytest.mark.parametrize(
    "url, in_clear",
    [
        ("http://api.videostui.com/finder/v2/api", True),
        ("http://10.0.0.7:8080/api", True),
        ("http://api.example.com.localhost.evil/api", True),
        ("https://api.example.com/api", False),
        ("http://127.0.0.1:8765/finder/v2/api", False),
        ("http://127.9.9.9/api", False),
        ("http://[::1]:8000/api", False),
        ("http://localhost:8000/api", False),
    ],
)
def test_which_base_urls_send_the_token_in_clear(url, in_clear):
    assert sends_token_in_clear(url) is in_clear


def test_plain_http_to_another_host_warns_on_save_and_on_the_change_page(admin_client, synced):
    remote = "http://videosapi.example/finder/v2/api"
    saved = admin_client.post(
        change_url(synced),
        account_form(synced, base_url=remote, token="new-token-1e1e"),
        follow=True,
    )

    warnings = [str(m) for m in saved.context["messages"] if m.level_tag == "warning"]
    assert warnings == [
        f"Test shop sends its token over plain http to {remote}: anyone on the network path "
        "can read it. Use an https base URL if the upstream offers one."
    ]
    assert 'id="token-in-clear-note"' in admin_client.get(change_url(synced)).content.decode()

    admin_client.post(
        change_url(synced),
        account_form(
            Account.objects.get(pk=synced.pk),
            base_url="https://videosapi.example/finder/v2/api",
            token="new-token-1e1e",
        ),
    )
    assert 'id="token-in-clear-note"' not in admin_client.get(change_url(synced)).content.decode()


def test_an_account_on_the_default_plain_http_base_url_shows_the_note(admin_client, db):
    account = Account.objects.create(name="Default", app_id="wx_default", token="t-default")

    html = admin_client.get(change_url(account)).content.decode()

    assert 'id="token-in-clear-note"' in html
    assert "http://api.videostui.com/finder/v2/api" in html


# --- the audit trail in admin --------------------------------------------------------------------


def test_the_audit_trail_is_for_superusers_and_read_only(
    admin_client, client, django_user_model, synced
):
    audit.record(None, audit.Action.CURSOR_RESET, synced)
    event = AuditEvent.objects.get()
    changelist = reverse("admin:accounts_auditevent_changelist")
    change = reverse("admin:accounts_auditevent_change", args=[event.pk])

    listing = admin_client.get(changelist)
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [event]
    assert admin_client.get(change).status_code == 200
    assert admin_client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert admin_client.post(change, {"action": "token_changed"}).status_code == 403
    delete = reverse("admin:accounts_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403

    nosy = staff_user(django_user_model, "nosy", ["view_auditevent", "change_auditevent"])
    client.force_login(nosy)
    assert client.get(changelist).status_code == 403
    assert client.get(change).status_code == 403
    assert "audit" not in client.get(reverse("admin:index")).content.decode().lower()
    assert AuditEvent.objects.get().action == audit.Action.CURSOR_RESET


def test_the_history_says_token_changed_only_when_it_was(admin_client, account):
    form = {
        "name": "Renamed",
        "app_id": account.app_id,
        "token": "",
        "base_url": account.base_url,
        "poll_interval": 5,
        "enabled": "on",
    }
    admin_client.post(change_url(account), form)
    admin_client.post(change_url(account), {**form, "token": "fresh-token-2b2b"})

    changes = [
        entry.get_change_message()
        for entry in LogEntry.objects.filter(object_id=str(account.pk)).order_by("pk")
    ]
    assert changes == ["Changed Name.", "Changed token."]
