"""Bulk actions on the session list: one request, one transaction, every selected conversation
checked first; activity lines, counters and the confirmation as the single actions have them."""

from __future__ import annotations

from datetime import timedelta
from threading import Barrier, Thread

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import counters
from inbox.labels.models import Label, SessionLabel
from inbox.models import Message, Session
from inbox.organize import bulk_actions
from inbox.organize.bulk_actions import BulkAction, BulkRefused
from inbox.reports.models import Episode
from inbox.sync import sync_account
from inbox.team.models import Notification

BULK = reverse("inbox:organize:bulk")


@pytest.fixture
def sessions(member) -> list[Session]:
    return list(Session.objects.order_by("pk"))


@pytest.fixture
def foreign_session(db) -> Session:
    """A conversation of an account the member does not belong to."""
    other = Account.objects.create(name="<b>Other</b> shop", app_id="wx_foreign", token="t")
    return Session.objects.create(
        account=other,
        msg_session_id="foreign@findermsg",
        peer_nickname="外人",
        last_message_at=timezone.now(),
        unread_count=2,
    )


def snapshot() -> list[tuple]:
    return list(
        Session.objects.order_by("pk").values_list(
            "pk", "status", "assignee_id", "unread_count", "snoozed_until", "updated_at"
        )
    )


def post(client, ids, action, **extra):
    return client.post(
        BULK,
        {"sessions": [str(pk) for pk in ids], "action": action, **extra},
        HTTP_HX_REQUEST="true",
    )


def test_bulk_resolve_changes_every_selected_session_in_one_request(
    member_client, member, sessions
):
    chosen = sessions[:3]
    response = post(member_client, [s.pk for s in chosen], "resolve")
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 conversations resolved" in html
    # The rows come back, out of band, for the list to swap in.
    assert 'hx-swap-oob="beforeend:#live-sink"' in html
    for session in chosen:
        assert f'id="session-item-{session.pk}"' in html
    assert set(
        Session.objects.filter(pk__in=[s.pk for s in chosen]).values_list("status", flat=True)
    ) == {"resolved"}
    assert (
        Session.objects.exclude(pk__in=[s.pk for s in chosen]).filter(status="resolved").count()
        == 0
    )
    lines = Message.objects.filter(kind=Message.Kind.ACTIVITY, activity=Message.Activity.RESOLVED)
    assert sorted(lines.values_list("session_id", flat=True)) == [s.pk for s in chosen]
    assert {line.author_id for line in lines} == {member.pk}
    # The reports see the resolutions as they see the thread header's: no episode left open.
    assert Episode.objects.filter(session__in=chosen).exists()
    assert not Episode.objects.filter(session__in=chosen, resolved_at__isnull=True).exists()
    assert counters.stored() == counters.recount()


def test_a_foreign_id_refuses_the_whole_request_and_changes_nothing(
    member_client, sessions, foreign_session
):
    before = snapshot()
    lines = Message.objects.count()
    ids = [sessions[0].pk, sessions[1].pk, foreign_session.pk]
    for action in ("resolve", "read", "assign_me", "unassign", "snooze_hour"):
        response = post(member_client, ids, action)
        assert response.status_code == 404, action
        text = response.content.decode()
        assert "Nothing was changed" in text and "1 of the selected conversations" in text
        assert response["Content-Type"].startswith("text/plain")
    assert snapshot() == before
    assert Message.objects.count() == lines


def test_an_id_that_does_not_exist_is_refused_too(member_client, sessions):
    before = snapshot()
    response = post(member_client, [sessions[0].pk, 987654321], "resolve")
    assert response.status_code == 404
    assert snapshot() == before


def test_a_non_member_cannot_change_the_sessions_of_an_account(client, outsider, sessions):
    client.force_login(outsider)
    before = snapshot()
    response = post(client, [s.pk for s in sessions[:2]], "resolve")
    assert response.status_code == 404
    assert snapshot() == before


def test_bad_input_is_400_with_a_clear_message(member_client, sessions):
    cases = [
        ({"action": "resolve"}, "Select at least one conversation."),
        ({"sessions": ["x1"], "action": "resolve"}, "not a conversation"),
        ({"sessions": [str(sessions[0].pk)], "action": "explode"}, "Choose an action."),
        ({"sessions": [str(sessions[0].pk)], "action": "assign"}, "Choose whom to assign"),
        ({"sessions": [str(sessions[0].pk)], "action": "label_add"}, "Choose a label."),
    ]
    for data, message in cases:
        response = member_client.post(BULK, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 400, data
        assert message in response.content.decode(), data


def test_a_batch_larger_than_the_cap_is_refused(member_client, sessions):
    ids = [str(n) for n in range(1, bulk_actions.MAX_BATCH + 2)]
    response = member_client.post(
        BULK, {"sessions": ids, "action": "resolve"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "at most 500 conversations" in response.content.decode()


def test_the_service_refuses_an_empty_or_oversized_selection(member):
    with pytest.raises(BulkRefused):
        bulk_actions.run(member, [], BulkAction(bulk_actions.MARK_READ))
    with pytest.raises(BulkRefused):
        bulk_actions.run(
            member, range(1, bulk_actions.MAX_BATCH + 2), BulkAction(bulk_actions.MARK_READ)
        )


def test_wrong_method_and_signed_out(client, member_client):
    assert member_client.get(BULK).status_code == 405
    client.logout()
    response = client.post(BULK, {"sessions": ["1"], "action": "resolve"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_bulk_assign_writes_one_line_per_change_and_checks_the_assignee(
    member_client, member, sessions, synced
):
    colleague = get_user_model().objects.create_user("wang", first_name="王五")
    synced.members.add(colleague)
    Session.objects.filter(pk=sessions[0].pk).update(assignee=colleague)
    ids = [s.pk for s in sessions[:3]]
    response = post(member_client, ids, "assign", assign_to=str(colleague.pk))
    assert response.status_code == 200
    assert "3 conversations assigned to 王五" in response.content.decode()
    assert set(Session.objects.filter(pk__in=ids).values_list("assignee_id", flat=True)) == {
        colleague.pk
    }
    # The one already theirs changed nothing and got no line.
    lines = Message.objects.filter(activity=Message.Activity.ASSIGNED)
    assert sorted(lines.values_list("session_id", flat=True)) == ids[1:]
    assert {line.activity_user_id for line in lines} == {colleague.pk}
    # And they hear of each, as from the thread header.
    notified = Notification.objects.filter(recipient=colleague, kind="assigned")
    assert sorted(notified.values_list("session_id", flat=True)) == ids[1:]
    assert counters.stored() == counters.recount()

    stranger = get_user_model().objects.create_user("stranger")
    response = post(member_client, ids, "assign", assign_to=str(stranger.pk))
    assert response.status_code == 400
    assert "Choose a member of your accounts." in response.content.decode()

    response = post(member_client, ids, "unassign")
    assert response.status_code == 200
    assert "3 conversations unassigned" in response.content.decode()
    assert Message.objects.filter(activity=Message.Activity.UNASSIGNED).count() == 3


def test_an_assignee_outside_one_of_the_accounts_refuses_everything(member, synced, sessions):
    """A superuser selects across accounts; the assignee is a member of only one of them."""
    boss = get_user_model().objects.create_superuser("boss", password="pw")
    other = Account.objects.create(name="Second <shop>", app_id="wx_second", token="t")
    theirs = Session.objects.create(
        account=other, msg_session_id="s2@findermsg", last_message_at=timezone.now()
    )
    before = snapshot()
    with pytest.raises(BulkRefused) as refused:
        bulk_actions.run(
            boss,
            [sessions[0].pk, theirs.pk],
            BulkAction(bulk_actions.ASSIGN, assignee=member),
        )
    assert "is not a member of Second <shop>" in str(refused.value)
    assert snapshot() == before


def test_bulk_snooze_mark_read_and_pending(member_client, sessions):
    ids = [s.pk for s in sessions[:2]]
    Session.objects.filter(pk__in=ids).update(unread_count=4)
    response = post(member_client, ids, "read")
    assert "2 conversations marked read" in response.content.decode()
    assert set(Session.objects.filter(pk__in=ids).values_list("unread_count", flat=True)) == {0}

    response = post(member_client, ids, "snooze_tomorrow")
    assert response.status_code == 200
    assert "2 conversations snoozed until" in response.content.decode()
    snoozed = Session.objects.filter(pk__in=ids)
    assert {s.status for s in snoozed} == {"snoozed"}
    assert all(s.snoozed_until > timezone.now() + timedelta(hours=1) for s in snoozed)
    assert Message.objects.filter(activity=Message.Activity.SNOOZED).count() == 2

    response = post(member_client, ids, "pending")
    assert "2 conversations marked pending" in response.content.decode()
    assert {s.snoozed_until for s in Session.objects.filter(pk__in=ids)} == {None}
    assert counters.stored() == counters.recount()


def test_bulk_labels_go_through_the_labels_service(member_client, member, sessions, synced):
    label = Label.objects.create(name="<VIP>", colour=Label.Colour.values[0])
    ids = [s.pk for s in sessions[:3]]
    response = post(member_client, ids, "label_add", apply_label=str(label.pk))
    assert response.status_code == 200
    assert "Label &lt;VIP&gt; added to 3 conversations" in response.content.decode()
    assert SessionLabel.objects.filter(label=label).count() == 3
    assert Message.objects.filter(activity=Message.Activity.LABELED).count() == 3
    # The rows swapped into the list carry their chips.
    assert response.content.decode().count("&lt;VIP&gt;</span>") >= 3

    response = post(member_client, ids[:1], "label_remove", apply_label=str(label.pk))
    assert "Label &lt;VIP&gt; removed from 1 conversation" in response.content.decode()
    assert SessionLabel.objects.filter(label=label).count() == 2


def test_a_label_of_another_account_is_refused(member_client, sessions, foreign_session):
    label = Label.objects.create(
        name="theirs", colour=Label.Colour.values[0], account=foreign_session.account
    )
    response = post(member_client, [sessions[0].pk], "label_add", apply_label=str(label.pk))
    assert response.status_code == 400
    assert "Choose a label you can use." in response.content.decode()
    assert not SessionLabel.objects.exists()


def test_without_htmx_a_bulk_action_redirects_back_to_the_list(member_client, sessions):
    response = member_client.post(
        BULK,
        {"sessions": [str(sessions[0].pk)], "action": "resolve", "view": "open"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox:index") + "?view=open"


def test_a_bulk_action_runs_a_fixed_number_of_queries(
    member_client, sessions, django_assert_max_num_queries
):
    ids = [s.pk for s in sessions]
    with django_assert_max_num_queries(16) as few:
        post(member_client, ids[:2], "resolve")
    post(member_client, ids, "reopen")
    with django_assert_max_num_queries(16) as many:
        post(member_client, ids, "resolve")
    assert len(few) == len(many), [q["sql"][:90] for q in many.captured_queries]


def test_the_list_renders_a_checkbox_per_row_and_the_bulk_bar(member_client, sessions):
    html = member_client.get(reverse("inbox:index")).content.decode()
    assert 'id="bulk-form"' in html and 'id="select-all"' in html
    for session in sessions:
        assert f'name="sessions" value="{session.pk}" form="bulk-form"' in html


def test_a_failure_part_way_leaves_nothing_changed(member, sessions, monkeypatch):
    """The sessions' update, their activity lines and the reports' facts are one transaction."""

    def broken(lines):
        raise RuntimeError("reports down")

    monkeypatch.setattr("inbox.organize.bulk_actions.facts.activity_added", broken)
    before, lines = snapshot(), Message.objects.count()
    with pytest.raises(RuntimeError):
        bulk_actions.run(
            member, [s.pk for s in sessions], BulkAction(bulk_actions.STATUS, status="resolved")
        )
    assert snapshot() == before and Message.objects.count() == lines
    assert counters.stored() == counters.recount()


def test_the_outcome_counts_what_really_changed(member, sessions):
    ids = [s.pk for s in sessions[:3]]
    Session.objects.filter(pk=ids[0]).update(status="pending")
    outcome = bulk_actions.run(member, ids, BulkAction(bulk_actions.STATUS, status="pending"))
    assert outcome.changed == 2
    assert sorted(s.pk for s in outcome.sessions) == ids
    assert Message.objects.filter(activity=Message.Activity.PENDING).count() == 2


def test_the_answer_keeps_the_lists_labels_in_its_links(member_client, sessions):
    label = Label.objects.create(name="VIP", colour=Label.Colour.values[0])
    response = member_client.post(
        BULK,
        {"sessions": [str(sessions[0].pk)], "action": "read", "label": str(label.pk)},
        HTTP_HX_REQUEST="true",
    )
    assert f'href="/sessions/{sessions[0].pk}/?label={label.pk}"' in response.content.decode()
    response = member_client.post(
        BULK, {"sessions": [str(sessions[0].pk)], "action": "read", "label": str(label.pk)}
    )
    assert response["Location"] == f"/?label={label.pk}"


def test_the_bars_arguments_do_not_mix_with_the_lists_filter(
    member_client, member, sessions, synced
):
    """Posted from a list narrowed to "assigned to me" and a label: the bar's own assignee and
    label choices are separate fields."""
    colleague = get_user_model().objects.create_user("zhao", first_name="赵六")
    synced.members.add(colleague)
    shown, other = (
        Label.objects.create(name=name, colour=Label.Colour.values[0]) for name in ("A", "B")
    )
    ids = [str(s.pk) for s in sessions[:2]]
    filtered = {"assignee": "me", "label": str(shown.pk)}
    response = post(member_client, ids, "assign", assign_to=str(colleague.pk), **filtered)
    assert "2 conversations assigned to 赵六" in response.content.decode()
    response = post(member_client, ids, "label_add", apply_label=str(other.pk), **filtered)
    assert "Label B added to 2 conversations" in response.content.decode()
    assert f"?assignee=me&amp;label={shown.pk}" in response.content.decode()
    assert not SessionLabel.objects.filter(label=shown).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_agents_resolving_overlapping_selections_at_once_write_each_line_once(sandbox, account):
    """The second bulk action waits for the first one's row locks, then sees the sessions
    resolved already: one activity line per session, counters right."""
    sync_account(account)
    agents = [get_user_model().objects.create_user(f"agent{n}") for n in range(2)]
    account.members.add(*agents)
    ids = sorted(Session.objects.values_list("pk", flat=True))
    selections = [ids[:4], ids[2:]]
    barrier = Barrier(2)

    def resolve(agent, selection) -> None:
        try:
            barrier.wait()
            bulk_actions.run(agent, selection, BulkAction(bulk_actions.STATUS, status="resolved"))
        finally:
            connection.close()

    threads = [Thread(target=resolve, args=pair) for pair in zip(agents, selections, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(Session.objects.values_list("status", flat=True)) == {"resolved"}
    lines = Message.objects.filter(activity=Message.Activity.RESOLVED)
    assert sorted(lines.values_list("session_id", flat=True)) == ids
    assert counters.stored() == counters.recount()
