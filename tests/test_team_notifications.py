"""Notifications (inbox.team): made per event and per preference, counted, read, and never about
an account the reader has left; the bell's views."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from inbox import services
from inbox.models import Session
from inbox.team import notifications
from inbox.team.models import Kind, Notification, NotificationPreference
from tests.conftest import store_items


@pytest.fixture
def colleague(synced):
    """王芳, a second member of the synced account."""
    user = User.objects.create_user("wang.fang", password="pw", first_name="王芳")
    synced.members.add(user)
    return user


@pytest.fixture
def write(synced, make_item):
    """Store one letter from a viewer through a sync page, written now (live) unless `age`."""
    pages = iter(range(1, 10**6))

    def letter(session_id: str, text: str = "在吗？", age: timedelta = timedelta(0), **extra):
        created = int(time.time() - age.total_seconds())
        item = make_item(
            content__msgSessionId=session_id,
            content__msg__CreateTime=created,
            content__msg__Content={"string": text},
            content__msg__FromUserName={"string": f"v2_{session_id}@finder"},
            **extra,
        )
        store_items(synced, [item], key_buff=f"team-page-{next(pages)}")
        return Session.objects.get(account=synced, msg_session_id=session_id)

    return letter


def kinds_for(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


# --- made per event ---------------------------------------------------------------------------


def test_a_live_letter_opening_a_conversation_tells_every_member(write, member, colleague):
    session = write("new-1", "你好，想问一下发货时间")
    for user in (member, colleague):
        note = Notification.objects.get(recipient=user)
        assert note.kind == Kind.NEW_CONVERSATION
        assert note.session == session
        assert note.text.endswith("你好，想问一下发货时间")
        assert note.read_at is None


def test_letters_from_history_tell_nobody(write, member, colleague):
    write("old-1", "上个月的问题", age=timedelta(days=30))
    assert not Notification.objects.exists()


def test_a_redelivered_page_tells_nobody_twice(synced, make_item, member):
    item = make_item(content__msg__CreateTime=int(time.time()))
    store_items(synced, [item], key_buff="first")
    store_items(synced, [item], key_buff="again")
    assert Notification.objects.filter(recipient=member).count() == 1


def test_a_new_letter_in_an_assigned_conversation_tells_its_assignee_once(write, member, colleague):
    session = write("mine-1")
    services.assign(session, colleague, member)
    Notification.objects.all().delete()
    write("mine-1", "第一封")
    write("mine-1", "第二封")
    unread = Notification.objects.filter(recipient=colleague, read_at__isnull=True)
    expected = (Kind.NEW_LETTER, f"{session.display_name}: 第二封")
    assert [(n.kind, n.text) for n in unread] == [expected]
    # Not the other members: the conversation is someone's.
    assert kinds_for(member) == []


def test_assigning_tells_the_assignee_but_not_who_assigned_themselves(write, member, colleague):
    session = write("assign-1")
    Notification.objects.all().delete()
    services.assign(session, colleague, member)
    assert kinds_for(colleague) == [Kind.ASSIGNED]
    assert Notification.objects.get(recipient=colleague).actor == member
    services.assign(session, member, member)
    assert kinds_for(member) == []


def test_a_snooze_that_ends_tells_the_assignee_or_else_whoever_snoozed(write, member, colleague):
    mine = write("snooze-1")
    nobodys = write("snooze-2")
    services.assign(mine, colleague, member)
    later = timezone.now() + timedelta(hours=1)
    services.set_status(mine, Session.Status.SNOOZED, member, snooze_until=later)
    services.set_status(nobodys, Session.Status.SNOOZED, member, snooze_until=later)
    Notification.objects.all().delete()
    assert services.reopen_due_snoozed_sessions(now=later + timedelta(seconds=1)) == 2
    assert kinds_for(colleague) == [Kind.SNOOZE_ENDED]
    assert [n.session_id for n in Notification.objects.filter(recipient=member)] == [nobodys.pk]


# --- per preference ---------------------------------------------------------------------------


def test_a_kind_switched_off_makes_no_notification(write, member, colleague):
    NotificationPreference.objects.create(
        user=member, kind=Kind.NEW_CONVERSATION, in_app=False, browser=False, sound=False
    )
    write("pref-1")
    assert kinds_for(member) == []
    assert kinds_for(colleague) == [Kind.NEW_CONVERSATION]


def test_browser_and_sound_choices_are_kept_on_the_notification(write, member, colleague):
    notifications.save_preferences(
        member,
        {Kind.NEW_CONVERSATION: notifications.Channels(in_app=True, browser=True, sound=True)},
    )
    write("pref-2")
    mine = Notification.objects.get(recipient=member)
    theirs = Notification.objects.get(recipient=colleague)
    assert (mine.browser, mine.sound) == (True, True)
    # The defaults: new conversations in the bell only.
    assert (theirs.browser, theirs.sound) == (False, False)


def test_no_browser_notification_or_sound_without_the_bell(member):
    notifications.save_preferences(
        member, {Kind.MENTION: notifications.Channels(in_app=False, browser=True, sound=True)}
    )
    assert notifications.preferences(member)[Kind.MENTION] == notifications.Channels(
        False, False, False
    )


def test_the_preferences_page_saves_every_kind(member_client, member):
    page = member_client.get(reverse("inbox:team:preferences"))
    assert page.status_code == 200
    assert "Enable browser notifications" in page.content.decode()
    response = member_client.post(
        reverse("inbox:team:preferences"),
        {"mention__in_app": "on", "mention__sound": "on", "assigned__in_app": "on"},
    )
    assert response.status_code == 200
    chosen = notifications.preferences(member)
    assert chosen[Kind.MENTION] == notifications.Channels(True, False, True)
    assert chosen[Kind.ASSIGNED] == notifications.Channels(True, False, False)
    assert chosen[Kind.NEW_LETTER] == notifications.Channels(False, False, False)


def test_the_preferences_page_answers_only_get_and_post(member_client):
    assert member_client.put(reverse("inbox:team:preferences")).status_code == 405


# --- count, read, permission ------------------------------------------------------------------


def open_(client, pk: int):
    return client.post(reverse("inbox:team:open"), {"notification": pk})


def poll(client, **params):
    return client.get(reverse("inbox:team:poll"), params)


def test_the_poll_counts_unread_and_brings_new_ones_for_the_browser(
    write, member, member_client, django_assert_max_num_queries
):
    notifications.save_preferences(
        member,
        {Kind.NEW_CONVERSATION: notifications.Channels(in_app=True, browser=True, sound=False)},
    )
    first = poll(member_client).json()
    assert first == {"unread": 0, "badge": "", "latest": 0, "new": []}
    write("poll-1", "<b>第一</b>")
    write("poll-2", "第二")
    with django_assert_max_num_queries(4):  # session, user, the count; the new ones
        answer = poll(member_client, after=0).json()
    assert answer["unread"] == 2 and answer["badge"] == "2"
    assert [item["body"].split(": ")[1] for item in answer["new"]] == ["<b>第一</b>", "第二"]
    assert answer["new"][0]["title"] == "New conversation"
    assert answer["latest"] == answer["new"][-1]["id"]
    # Nothing newer: one query besides the session's and the user's.
    with django_assert_max_num_queries(3):
        assert poll(member_client, after=answer["latest"]).json()["new"] == []


def test_the_badge_stops_counting_at_99(member, synced):
    session = Session.objects.filter(account=synced).first()
    Notification.objects.bulk_create(
        Notification(recipient=member, kind=Kind.NEW_CONVERSATION, account=synced, session=session)
        for _ in range(120)
    )
    assert notifications.badge(len(notifications.unread_ids(member))) == "99+"


def test_the_poll_refuses_a_bad_cursor(member_client):
    assert poll(member_client, after="x").status_code == 400


def test_mark_all_read_empties_the_badge(write, member, member_client, colleague):
    write("read-1")
    write("read-2")
    response = member_client.post(reverse("inbox:team:mark_all_read"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-unread="0"' in response.content.decode()
    assert poll(member_client).json()["unread"] == 0
    # Only the user's own.
    assert Notification.objects.filter(recipient=colleague, read_at__isnull=True).count() == 2
    assert member_client.get(reverse("inbox:team:mark_all_read")).status_code == 405


def test_opening_a_notification_reads_that_conversations_and_goes_there(
    write, member, member_client
):
    session = write("open-1")
    services.add_note(session, member, "记一下", uuid.uuid4())
    other = write("open-2")
    target = Notification.objects.get(recipient=member, session=session)
    response = open_(member_client, target.pk)
    assert response.status_code == 302 and response.url == session.get_absolute_url()
    unread = Notification.objects.filter(recipient=member, read_at__isnull=True)
    assert [n.session_id for n in unread] == [other.pk]
    assert member_client.get(reverse("inbox:team:open")).status_code == 405
    assert member_client.post(reverse("inbox:team:open"), {"notification": "x"}).status_code == 400


def test_the_dropdown_lists_newest_first_escaped(write, member_client):
    write("list-1", "<script>alert(1)</script>")
    write("list-2", "第二")
    html = member_client.get(reverse("inbox:team:notifications"), HTTP_HX_REQUEST="true")
    text = html.content.decode()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.index("第二") < text.index("&lt;script&gt;")
    assert "<html" not in text
    assert "<html" in member_client.get(reverse("inbox:team:notifications")).content.decode()


def test_a_notification_never_reveals_a_conversation_of_an_account_one_left(
    write, synced, member, member_client
):
    write("left-1", "秘密")
    target = Notification.objects.get(recipient=member)
    synced.members.remove(member)
    assert poll(member_client, after=0).json() == {
        "unread": 0,
        "badge": "",
        "latest": 0,
        "new": [],
    }
    listed = member_client.get(reverse("inbox:team:notifications"), HTTP_HX_REQUEST="true")
    assert "秘密" not in listed.content.decode()
    assert open_(member_client, target.pk).status_code == 404
    # And one made while one is not a member is not made at all.
    write("left-2", "也是秘密")
    assert Notification.objects.filter(recipient=member).count() == 1


def test_another_users_notification_is_404(write, member, colleague, client):
    write("theirs-1")
    theirs = Notification.objects.get(recipient=colleague)
    client.force_login(member)
    assert open_(client, theirs.pk).status_code == 404


def test_the_bell_needs_a_sign_in(client):
    response = client.get(reverse("inbox:team:poll"))
    assert response.status_code == 302 and "/login/" in response.url


def test_the_bell_is_in_the_sidebar_and_costs_the_inbox_no_query(member_client):
    html = member_client.get(reverse("inbox:index")).content.decode()
    assert 'id="team-bell"' in html and 'hx-preserve="true"' in html
    assert reverse("inbox:team:poll") in html


def test_a_bulk_assignment_tells_the_assignee_in_one_insert(
    write, member, colleague, django_assert_max_num_queries
):
    from inbox.team import events

    sessions = [write(f"bulk-{n}") for n in range(5)]
    Notification.objects.all().delete()
    with django_assert_max_num_queries(4):  # members, superusers, preferences, the insert
        events.assigned_in_bulk(sessions, colleague, member)
    assert Notification.objects.filter(recipient=colleague, kind=Kind.ASSIGNED).count() == 5


def test_the_recipients_tabs_hear_of_it_after_commit_without_its_content(
    write, member, colleague, monkeypatch, django_capture_on_commit_callbacks
):
    from inbox.live import publish

    sent = []
    monkeypatch.setattr(
        publish, "to_users", lambda users, event, data: sent.append((list(users), event, data))
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        session = write("live-1", "不该出现在推送里")
        services.assign(session, colleague, member)
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert ([member.pk, colleague.pk], "notification", {"kind": "new_conversation"}) in sent
    assert ([colleague.pk], "notification", {"kind": "assigned"}) in sent
    assert "不该出现在推送里" not in repr(sent)


def test_each_agent_keeps_their_newest_notifications(member, colleague, synced):
    from inbox.team import tasks

    session = Session.objects.filter(account=synced).first()
    for user, count in ((member, 12), (colleague, 3)):
        Notification.objects.bulk_create(
            Notification(
                recipient=user, kind=Kind.NEW_CONVERSATION, account=synced, session=session
            )
            for _ in range(count)
        )
    newest = list(
        Notification.objects.filter(recipient=member).order_by("-id").values_list("pk", flat=True)
    )[:5]
    assert notifications.prune(keep=5) == 7
    kept = Notification.objects.filter(recipient=member).order_by("-id")
    assert list(kept.values_list("pk", flat=True)) == newest
    assert Notification.objects.filter(recipient=colleague).count() == 3
    assert tasks.prune_notifications() == 0  # 1,000 each by default
