"""The audit trail: who changed a token, a base URL, an app id or the members, who reset a cursor
or a lockout, and when; never the token itself."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts import audit
from accounts.models import Account, AuditEvent
from inbox import sync
from tests.conftest import SANDBOX_TOKEN

Action = AuditEvent.Action
NEW_TOKEN = "rotated-token-6d6d"


def change_url(account: Account) -> str:
    return reverse("admin:accounts_account_change", args=[account.pk])


def account_form(account: Account, **changes) -> dict:
    return {
        "name": account.name,
        "app_id": account.app_id,
        "token": "",
        "base_url": account.base_url,
        "members": list(account.members.values_list("pk", flat=True)),
        "poll_interval": 5,
        "enabled": "on",
        **changes,
    }


def trail() -> list[tuple[str, str, dict]]:
    return [
        (event.action, event.actor_name, event.details)
        for event in AuditEvent.objects.order_by("pk")
    ]


def assert_no_secret_in_the_trail(*secrets: str) -> None:
    dumped = json.dumps(list(AuditEvent.objects.values()), default=str, ensure_ascii=False)
    for secret in secrets:
        assert secret not in dumped


def test_admin_changes_to_token_address_and_members_are_recorded_without_the_token(
    admin_client, admin_user, account, django_user_model
):
    li = django_user_model.objects.create_user("li.si")
    wang = django_user_model.objects.create_user("wang.wu")
    account.members.add(li)

    response = admin_client.post(
        change_url(account),
        account_form(
            account,
            token=NEW_TOKEN,
            app_id="wx_moved",
            base_url="https://videosapi.example/finder/v2/api",
            members=[wang.pk],
        ),
    )

    assert response.status_code == 302
    assert trail() == [
        (Action.TOKEN_CHANGED, "admin", {}),
        (
            Action.BASE_URL_CHANGED,
            "admin",
            {"old": account.base_url, "new": "https://videosapi.example/finder/v2/api"},
        ),
        (Action.APP_ID_CHANGED, "admin", {"old": account.app_id, "new": "wx_moved"}),
        (Action.MEMBERS_CHANGED, "admin", {"added": ["wang.wu"], "removed": ["li.si"]}),
    ]
    assert {event.account_id for event in AuditEvent.objects.all()} == {account.pk}
    assert {event.actor_id for event in AuditEvent.objects.all()} == {admin_user.pk}
    assert_no_secret_in_the_trail(NEW_TOKEN, SANDBOX_TOKEN)


def test_saving_an_account_without_security_changes_records_nothing(admin_client, account):
    response = admin_client.post(change_url(account), account_form(account, name="Renamed"))

    assert response.status_code == 302
    assert trail() == []


def test_creating_and_deleting_an_account_in_admin_is_recorded(admin_client, db):
    created = admin_client.post(
        reverse("admin:accounts_account_add"),
        {"name": "New shop", "app_id": "wx_new", "token": "new-token-1", "poll_interval": 5},
    )
    account = Account.objects.get(app_id="wx_new")
    deleted = admin_client.post(
        reverse("admin:accounts_account_delete", args=[account.pk]), {"post": "yes"}
    )

    assert (created.status_code, deleted.status_code) == (302, 302)
    assert trail() == [
        (Action.ACCOUNT_CREATED, "admin", {"app_id": "wx_new", "base_url": ""}),
        (Action.ACCOUNT_DELETED, "admin", {"app_id": "wx_new"}),
    ]
    # The trail outlives the account: its name stays, the link goes.
    assert [(e.account_id, e.account_label) for e in AuditEvent.objects.all()] == [
        (None, "New shop (wx_new)"),
        (None, "New shop (wx_new)"),
    ]
    assert_no_secret_in_the_trail("new-token-1")


def test_a_cursor_reset_is_recorded_for_each_account_it_reset(admin_client, synced, db):
    busy = Account.objects.create(name="Busy", app_id="wx_busy", token="busy-token", key_buff="k")

    with sync.account_lease(busy):
        admin_client.post(
            reverse("admin:accounts_account_changelist"),
            {
                "action": "reset_cursor",
                "_selected_action": [synced.pk, busy.pk],
                "confirmed": "yes",
            },
        )

    assert [(e.action, e.account_id) for e in AuditEvent.objects.all()] == [
        (Action.CURSOR_RESET, synced.pk)
    ]


def test_add_account_records_what_it_changed_as_the_command_line(db, django_user_model):
    django_user_model.objects.create_user("agent")

    def add_account(token: str, *args: str) -> None:
        call_command(
            "add_account",
            "--name",
            "Shop",
            "--app-id",
            "wx_cli",
            *args,
            stdin=StringIO(token),
            stdout=StringIO(),
            stderr=StringIO(),
        )

    add_account("cli-token-1")
    add_account("cli-token-1", "--member", "agent")  # same token: not a token change
    add_account("cli-token-2", "--base-url", "http://127.0.0.1:9/api")

    via = {"via": "manage.py add_account"}
    assert trail() == [
        (Action.ACCOUNT_CREATED, "", {**via, "app_id": "wx_cli", "base_url": ""}),
        (Action.MEMBERS_CHANGED, "", {**via, "added": ["agent"], "removed": []}),
        (Action.TOKEN_CHANGED, "", via),
        (Action.BASE_URL_CHANGED, "", {**via, "old": "", "new": "http://127.0.0.1:9/api"}),
    ]
    assert not AuditEvent.objects.filter(actor__isnull=False).exists()
    assert_no_secret_in_the_trail("cli-token-1", "cli-token-2")


def test_a_lockout_reset_can_be_recorded_by_whoever_resets_it(admin_user):
    event = audit.record(
        admin_user, audit.Action.LOCKOUT_RESET, username="li.si", ip_address="203.0.113.9"
    )

    assert (event.action, event.actor_name, event.account, event.details) == (
        "lockout_reset",
        "admin",
        None,
        {"username": "li.si", "ip_address": "203.0.113.9"},
    )
    assert str(event.get_action_display()) == "Sign-in lockout reset"


@pytest.mark.parametrize("key", ["token", "password", "secret", "key"])
def test_the_trail_refuses_details_that_would_carry_a_secret(db, key):
    with pytest.raises(ValueError, match="must not carry secrets"):
        audit.record(None, audit.Action.TOKEN_CHANGED, **{key: "s3cret"})

    assert not AuditEvent.objects.exists()


def test_the_trail_keeps_who_acted_after_the_user_is_deleted(admin_user, account):
    audit.record(admin_user, audit.Action.CURSOR_RESET, account)
    admin_user.delete()

    event = AuditEvent.objects.get()
    assert (event.actor, event.actor_name) == (None, "admin")
