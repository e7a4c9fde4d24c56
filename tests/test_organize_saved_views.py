"""Saved views: saving the list's filter, who sees which, counts from the counters (equal to a
recount), escaping, renaming and deleting, and the sidebar's fixed query cost."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account
from inbox import browse
from inbox.labels import services as labels
from inbox.labels.models import Label
from inbox.models import Session
from inbox.organize import saved_views
from inbox.organize.models import SavedView

SAVE = reverse("inbox:organize:save_view")
MANAGE = reverse("inbox:organize:manage")


@pytest.fixture
def colleague(synced):
    user = get_user_model().objects.create_user("wang", password="pw", first_name="王五")
    synced.members.add(user)
    return user


def sidebar_for(user, list_filter=None):
    accounts = browse.visible_accounts(user)
    return saved_views.sidebar(user, accounts, list_filter or browse.ListFilter(), "/")


def recount(user, view: SavedView) -> int:
    """The view's sessions counted the slow way: the list's own condition over the sessions."""
    accounts = browse.visible_accounts(user)
    account = next((a for a in accounts if a.pk == view.account_id), None)
    list_filter = browse.parse_filter(_query(view.params()), accounts)
    assert list_filter.account == account
    sessions = browse.visible_sessions(user).filter(list_filter.condition(user))
    if account is not None:
        sessions = sessions.filter(account=account)
    return sessions.count()


def _query(params: dict):
    from django.http import QueryDict
    from django.utils.http import urlencode

    return QueryDict(urlencode(params, doseq=True))


def test_saving_the_current_filter_from_the_list(member_client, member, synced):
    response = member_client.post(
        SAVE,
        {
            "name": "  My   unread ",
            "view": "open",
            "assignee": "me",
            "unread": "1",
            "account": str(synced.pk),
            "shared": "on",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    view = SavedView.objects.get()
    assert (view.name, view.owner, view.shared) == ("My unread", member, True)
    assert view.params() == {
        "account": str(synced.pk),
        "view": "open",
        "assignee": "me",
        "unread": "1",
    }
    html = response.content.decode()
    # The sidebar's section comes back out of band with the new view in it.
    assert 'id="nav-saved-views"' in html and 'hx-swap-oob="true"' in html and "My unread" in html


def test_saving_checks_the_name_and_the_filter(member_client, member, outsider):
    cases = [
        ({"name": ""}, 400, "Give the view a name."),
        ({"name": "x" * 61}, 400, "at most 60 characters"),
        ({"name": "bad", "view": "nonsense"}, 404, ""),
        ({"name": "bad", "account": str(outsider.finder_accounts.get().pk)}, 404, ""),
    ]
    for data, status, message in cases:
        response = member_client.post(SAVE, data, HTTP_HX_REQUEST="true")
        assert response.status_code == status, data
        assert message in response.content.decode()
    member_client.post(SAVE, {"name": "Twice"}, HTTP_HX_REQUEST="true")
    response = member_client.post(SAVE, {"name": "Twice"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "You already have a view named Twice." in response.content.decode()
    assert SavedView.objects.count() == 1


def test_a_shared_view_is_seen_by_teammates_and_a_personal_one_is_not(
    member, colleague, outsider, synced
):
    SavedView.objects.create(owner=member, name="mine only")
    SavedView.objects.create(owner=member, name="for the team", shared=True)
    SavedView.objects.create(owner=member, name="team, this account", shared=True, account=synced)
    assert [item.view.name for item in sidebar_for(member)] == [
        "for the team",
        "mine only",
        "team, this account",
    ]
    assert [item.view.name for item in sidebar_for(colleague)] == [
        "for the team",
        "team, this account",
    ]
    # Someone who cannot see the account does not see its views, even shared.
    assert [item.view.name for item in sidebar_for(outsider)] == ["for the team"]


def test_counts_equal_a_recount_after_random_changes(member, colleague, synced):
    for name, view, assignee, unread, account in [
        ("all", "all", "", False, None),
        ("open mine", "open", "me", False, None),
        ("open nobody", "open", "none", False, synced),
        ("wang's", "all", str(colleague.pk), False, None),
        ("unread", "unread", "", False, None),
        ("resolved unread", "resolved", "", True, synced),
        ("mine, but nobody's", "mine", "none", False, None),
        ("snoozed", "snoozed", "", False, None),
    ]:
        SavedView.objects.create(
            owner=member, name=name, view=view, assignee=assignee, unread=unread, account=account
        )
    rng = random.Random(7)
    sessions = list(Session.objects.all())
    for _ in range(4):
        for session in sessions:
            Session.objects.filter(pk=session.pk).update(
                status=rng.choice(Session.Status.values),
                assignee=rng.choice([None, member, colleague]),
                unread_count=rng.choice([0, 0, 1, 3]),
            )
        items = sidebar_for(member)
        assert len(items) == 8
        for item in items:
            assert item.count == recount(member, item.view), item.view.name


def test_a_single_label_view_counts_from_the_label_counters(member, synced):
    label = Label.objects.create(name="退款", colour=Label.Colour.values[0])
    sessions = list(Session.objects.order_by("pk")[:3])
    labels.add_label(member, sessions, label)
    Session.objects.filter(pk=sessions[0].pk).update(status="resolved")
    SavedView.objects.create(owner=member, name="refunds", label_ids=[label.pk])
    SavedView.objects.create(owner=member, name="open refunds", view="open", label_ids=[label.pk])
    SavedView.objects.create(owner=member, name="my refunds", assignee="me", label_ids=[label.pk])
    counts = {item.view.name: item.count for item in sidebar_for(member)}
    assert counts == {"refunds": 3, "open refunds": 2, "my refunds": None}
    item = next(i for i in sidebar_for(member) if i.view.name == "open refunds")
    assert item.url == f"/?view=open&label={label.pk}"


def test_the_sidebar_costs_the_same_queries_for_one_view_as_for_thirty(
    member, member_client, colleague
):
    index = reverse("inbox:index")
    SavedView.objects.create(owner=member, name="one")
    member_client.get(index)
    with CaptureQueriesContext(connection) as one:
        member_client.get(index, HTTP_HX_REQUEST="true")
    for n in range(29):
        SavedView.objects.create(owner=colleague, name=f"shared {n}", shared=True, view="open")
    with CaptureQueriesContext(connection) as thirty:
        response = member_client.get(index, HTTP_HX_REQUEST="true")
    assert len(one) == len(thirty)
    assert response.content.decode().count("data-saved-view=") == 30
    assert sum("organize_savedview" in q["sql"] for q in thirty) == 1
    # Counts come from the counters, never from counting sessions: the accounts' sums and the
    # saved views' counter rows.
    assert sum("inbox_sessioncounter" in q["sql"] for q in thirty) == 2
    assert not any("COUNT(" in q["sql"] and '"inbox_session"' in q["sql"] for q in thirty)


def test_view_names_are_escaped_in_the_sidebar_and_the_manage_page(member, member_client):
    SavedView.objects.create(owner=member, name='<script>alert("x")</script>&', shared=True)
    for url in (reverse("inbox:index"), MANAGE):
        html = member_client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html


def test_the_active_saved_view_is_marked(member, member_client, synced):
    view = SavedView.objects.create(owner=member, name="Open here", view="open", account=synced)
    html = member_client.get(
        reverse("inbox:index"), {"view": "open", "account": synced.pk}
    ).content.decode()
    link = html.split(f'data-saved-view="{view.pk}"')[0].rsplit("<a ", 1)[1]
    assert "is-active" in link and 'aria-current="page"' in link


def test_rename_share_and_delete_own_views(member, member_client):
    view = SavedView.objects.create(owner=member, name="old")
    url = reverse("inbox:organize:update_view", args=[view.pk])
    response = member_client.post(url, {"name": "new", "shared": "on"})
    assert response.status_code == 302
    view.refresh_from_db()
    assert (view.name, view.shared) == ("new", True)
    response = member_client.post(url, {"name": ""})
    assert response.status_code == 400 and "Give the view a name." in response.content.decode()
    response = member_client.post(reverse("inbox:organize:delete_view", args=[view.pk]))
    assert response.status_code == 302 and not SavedView.objects.exists()


def test_others_views_cannot_be_changed(member, member_client, colleague, outsider):
    personal = SavedView.objects.create(owner=colleague, name="theirs")
    shared = SavedView.objects.create(owner=colleague, name="team", shared=True)
    for view, status in ((personal, 404), (shared, 403)):
        for url in (
            reverse("inbox:organize:update_view", args=[view.pk]),
            reverse("inbox:organize:delete_view", args=[view.pk]),
        ):
            assert member_client.post(url, {"name": "hijacked"}).status_code == status
    assert set(SavedView.objects.values_list("name", flat=True)) == {"theirs", "team"}
    assert f'id="saved-view-{shared.pk}"' not in member_client.get(MANAGE).content.decode()


def test_a_superuser_edits_shared_views_but_not_personal_ones(client, colleague):
    boss = get_user_model().objects.create_superuser("boss", password="pw")
    client.force_login(boss)
    personal = SavedView.objects.create(owner=colleague, name="theirs")
    shared = SavedView.objects.create(owner=colleague, name="team", shared=True)
    url = reverse("inbox:organize:update_view", args=[shared.pk])
    assert client.post(url, {"name": "team (renamed)", "shared": "on"}).status_code == 302
    url = reverse("inbox:organize:update_view", args=[personal.pk])
    assert client.post(url, {"name": "x"}).status_code == 404
    assert set(SavedView.objects.values_list("name", flat=True)) == {"theirs", "team (renamed)"}


def test_an_accounts_views_go_with_it(member, synced):
    SavedView.objects.create(owner=member, name="here", account=synced)
    other = Account.objects.create(name="Other", app_id="wx_x", token="t")
    SavedView.objects.create(owner=member, name="there", account=other)
    other.delete()
    assert list(SavedView.objects.values_list("name", flat=True)) == ["here"]


def test_saved_view_urls_round_trip_through_the_list_filter(member, synced):
    view = SavedView.objects.create(
        owner=member, name="x", view="pending", assignee="none", unread=True, account=synced
    )
    accounts = browse.visible_accounts(member)
    parsed = browse.parse_filter(_query(view.params()), accounts)
    assert parsed.params() == view.params()


def test_the_list_narrows_to_an_assignee_and_to_unread(member, member_client, colleague):
    sessions = list(Session.objects.order_by("pk"))
    Session.objects.filter(pk=sessions[0].pk).update(assignee=member, unread_count=2)
    Session.objects.filter(pk=sessions[1].pk).update(assignee=member, unread_count=0)
    Session.objects.filter(pk=sessions[2].pk).update(assignee=colleague, unread_count=1)
    index = reverse("inbox:index")

    def listed(**params) -> set[int]:
        response = member_client.get(index, params, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        return {s.pk for s in response.context["sessions"]}

    assert listed(assignee="me") == {sessions[0].pk, sessions[1].pk}
    assert listed(assignee="me", unread="1") == {sessions[0].pk}
    assert listed(assignee=str(colleague.pk)) == {sessions[2].pk}
    nobody = set(Session.objects.filter(assignee__isnull=True).values_list("pk", flat=True))
    assert listed(assignee="none") == nobody
    for bad in ({"assignee": "someone"}, {"unread": "yes"}, {"assignee": "9" * 30}):
        assert member_client.get(index, bad).status_code == 404
    # The list's poll narrows the same way: a changed row outside the filter is not moved to
    # the top.
    poll = member_client.get(
        reverse("inbox:sessions_poll"), {"since": "0", "assignee": "me", "unread": "1"}
    )
    assert [s.pk for s in poll.context["moved"]] == [sessions[0].pk]
    bad = member_client.get(reverse("inbox:sessions_poll"), {"since": "0", "unread": "2"})
    assert bad.status_code == 400


def test_a_view_saves_only_labels_the_owner_can_use(member_client, member, outsider):
    theirs = Label.objects.create(
        name="theirs", colour=Label.Colour.values[0], account=outsider.finder_accounts.get()
    )
    shared = Label.objects.create(name="VIP", colour=Label.Colour.values[0])
    response = member_client.post(
        SAVE, {"name": "forged", "label": [str(theirs.pk)]}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "not ones you can use" in response.content.decode()
    response = member_client.post(
        SAVE, {"name": "VIPs", "label": [str(shared.pk)]}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert SavedView.objects.get().label_ids == [shared.pk]


def test_admin_lists_saved_views_for_superusers_only(client, member, colleague):
    SavedView.objects.create(owner=colleague, name="<i>theirs</i>")
    url = reverse("admin:organize_savedview_changelist")
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))
    response = client.get(url)
    assert response.status_code == 200
    assert "&lt;i&gt;theirs&lt;/i&gt;" in response.content.decode()
