"""Auto-assignment settings on the account's admin page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from accounts.models import Account
from inbox.team.models import AgentCap, AssignmentPolicy

PREFIX_POLICY = "assignment_policy"
PREFIX_CAPS = "agent_caps"


def change_url(account: Account) -> str:
    return reverse("admin:accounts_account_change", args=[account.pk])


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.fixture
def staff(synced, member):
    """A staff member of the synced account who may change accounts and their auto-assignment."""
    user = User.objects.create_user("desk.lead", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_account",
                "change_account",
                "view_assignmentpolicy",
                "add_assignmentpolicy",
                "change_assignmentpolicy",
                "view_agentcap",
                "add_agentcap",
                "change_agentcap",
                "delete_agentcap",
            ]
        )
    )
    synced.members.add(user)
    return user


def form(account: Account, **extra) -> dict:
    return {
        "name": account.name,
        "own_username": account.own_username,
        "nickname": account.nickname,
        "poll_interval": account.poll_interval,
        "enabled": "on",
        **extra,
    }


def test_an_account_admin_sets_the_policy_and_a_members_cap(client, synced, staff, member):
    client.force_login(staff)
    page = client.get(change_url(synced)).content.decode()
    assert 'id="assignment_policy-group"' in page and 'id="agent_caps-group"' in page
    assert "Open conversations per agent" in page
    data = form(
        synced,
        **management(PREFIX_POLICY, 1),
        **{f"{PREFIX_POLICY}-0-mode": "least_busy", f"{PREFIX_POLICY}-0-cap_per_agent": "3"},
        **management(PREFIX_CAPS, 1),
        **{f"{PREFIX_CAPS}-0-user": str(member.pk), f"{PREFIX_CAPS}-0-cap": "5"},
    )
    response = client.post(change_url(synced), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = AssignmentPolicy.objects.get(account=synced)
    assert (policy.mode, policy.cap_per_agent) == ("least_busy", 3)
    assert AgentCap.objects.get(account=synced).user == member


def test_a_cap_is_for_a_member_of_the_account(client, synced, staff, outsider):
    client.force_login(staff)
    data = form(
        synced,
        **management(PREFIX_POLICY, 0),
        **management(PREFIX_CAPS, 1),
        **{f"{PREFIX_CAPS}-0-user": str(outsider.pk), f"{PREFIX_CAPS}-0-cap": "5"},
    )
    assert client.post(change_url(synced), data).status_code == 200  # the form, with its error
    assert not AgentCap.objects.exists()


def test_a_cap_of_zero_for_the_whole_account_is_refused(admin_client, synced):
    data = form(
        synced,
        app_id=synced.app_id,
        base_url=synced.base_url,
        **management(PREFIX_POLICY, 1),
        **{f"{PREFIX_POLICY}-0-mode": "round_robin", f"{PREFIX_POLICY}-0-cap_per_agent": "0"},
        **management(PREFIX_CAPS, 0),
    )
    assert admin_client.post(change_url(synced), data).status_code == 200
    assert not AssignmentPolicy.objects.exists()


def test_another_accounts_policy_is_out_of_reach(client, staff, outsider):
    other = Account.objects.get(app_id="wx_other")
    client.force_login(staff)
    assert client.get(change_url(other)).status_code == 404
