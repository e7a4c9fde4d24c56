"""Auto-assignment (inbox.team.assignment): fair, never above a cap, only to online members,
waiting when nobody is available, and safe when several assigners run at once (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from accounts.models import Account
from inbox import services
from inbox.models import Message, Session
from inbox.team import assignment, tasks
from inbox.team.models import (
    AgentCap,
    AssignmentPolicy,
    Kind,
    Notification,
    WaitingConversation,
)
from tests.conftest import store_items

RR = AssignmentPolicy.Mode.ROUND_ROBIN
LEAST = AssignmentPolicy.Mode.LEAST_BUSY


@pytest.fixture
def agents(synced, member) -> list[User]:
    """Three members: 李四 (the `member` fixture), 王芳, 张三, in user id order."""
    more = [
        User.objects.create_user("wang.fang", password="pw", first_name="王芳"),
        User.objects.create_user("zhang.san", password="pw", first_name="张三"),
    ]
    synced.members.add(*more)
    return [member, *more]


@pytest.fixture
def online(monkeypatch) -> set[int]:
    """Who presence says is online: the test fills the set."""
    now_online: set[int] = set()
    monkeypatch.setattr(
        assignment, "online_user_ids", lambda ids: {pk for pk in ids if pk in now_online}
    )
    return now_online


def policy(account: Account, mode: str = RR, cap: int = 10) -> AssignmentPolicy:
    return AssignmentPolicy.objects.update_or_create(
        account=account, defaults={"mode": mode, "cap_per_agent": cap}
    )[0]


@pytest.fixture
def write(synced, make_item, django_capture_on_commit_callbacks):
    """A viewer's letter stored through a sync page, written now unless `age`; what the page
    queues after commit (the assignment task) runs, as a worker would run it."""
    pages = iter(range(1, 10**6))

    def letter(session_id: str, *, age: timedelta = timedelta(0)) -> Session:
        item = make_item(
            content__msgSessionId=session_id,
            content__msg__CreateTime=int(time.time() - age.total_seconds()),
            content__msg__FromUserName={"string": f"v2_{session_id}@finder"},
        )
        with django_capture_on_commit_callbacks(execute=True):
            store_items(synced, [item], key_buff=f"assign-page-{next(pages)}")
        return Session.objects.get(account=synced, msg_session_id=session_id)

    return letter


def assignees(sessions: list[Session]) -> list[str | None]:
    names = []
    for session in sessions:
        session.refresh_from_db()
        names.append(session.assignee.username if session.assignee else None)
    return names


def test_round_robin_takes_online_members_in_turn(synced, agents, online, write):
    policy(synced, RR)
    online.update(agent.pk for agent in agents)
    sessions = [write(f"rr-{n}") for n in range(7)]
    assert assignees(sessions) == [
        "li.si",
        "wang.fang",
        "zhang.san",
        "li.si",
        "wang.fang",
        "zhang.san",
        "li.si",
    ]


def test_offline_members_get_nothing(synced, agents, online, write):
    policy(synced, RR)
    online.update({agents[0].pk, agents[2].pk})
    sessions = [write(f"off-{n}") for n in range(4)]
    assert assignees(sessions) == ["li.si", "zhang.san", "li.si", "zhang.san"]


def test_nobody_gets_more_than_the_cap_and_the_rest_waits(synced, agents, online, write):
    policy(synced, RR, cap=2)
    online.update({agents[0].pk, agents[1].pk})
    sessions = [write(f"cap-{n}") for n in range(6)]
    assert assignees(sessions) == ["li.si", "wang.fang", "li.si", "wang.fang", None, None]
    assert set(WaitingConversation.objects.values_list("session_id", flat=True)) == {
        sessions[4].pk,
        sessions[5].pk,
    }


def test_a_members_own_cap_wins(synced, agents, online, write):
    policy(synced, RR, cap=5)
    AgentCap.objects.create(account=synced, user=agents[1], cap=1)
    online.update({agents[0].pk, agents[1].pk})
    sessions = [write(f"own-{n}") for n in range(4)]
    assert assignees(sessions) == ["li.si", "wang.fang", "li.si", "li.si"]


def test_the_cap_counts_open_conversations_of_that_account_only(synced, agents, online, write):
    policy(synced, RR, cap=1)
    online.add(agents[0].pk)
    resolved = write("count-1")
    services.set_status(resolved, Session.Status.RESOLVED, agents[0])
    other = Account.objects.create(name="Other", app_id="wx_other_team", token="t")
    other.members.add(agents[0])
    assert assignees([write("count-2")]) == ["li.si"]


def test_waiting_conversations_go_oldest_first_when_someone_comes_online(
    synced, agents, online, write, django_capture_on_commit_callbacks
):
    policy(synced, RR, cap=2)
    sessions = [write(f"wait-{n}") for n in range(3)]
    assert assignees(sessions) == [None, None, None]
    online.add(agents[1].pk)
    with django_capture_on_commit_callbacks(execute=True):
        assignment.agent_available(agents[1].pk)
    assert assignees(sessions) == ["wang.fang", "wang.fang", None]


def test_dropping_below_the_cap_takes_the_next_waiting_one(synced, agents, online, write):
    policy(synced, RR, cap=1)
    online.add(agents[1].pk)
    first, second = write("below-1"), write("below-2")
    assert assignees([first, second]) == ["wang.fang", None]
    services.set_status(first, Session.Status.RESOLVED, agents[1])
    assert tasks.assign_waiting_everywhere() == 1  # beat's sweep
    assert assignees([second]) == ["wang.fang"]
    assert not WaitingConversation.objects.exists()


def test_least_busy_evens_out_the_load(synced, agents, online, write):
    policy(synced, LEAST, cap=10)
    online.update(agent.pk for agent in agents)
    busy = [write(f"busy-{n}") for n in range(3)]
    for session in busy:
        services.assign(session, agents[0], agents[0])
    assigned = assignees([write(f"least-{n}") for n in range(5)])
    assert assigned == ["wang.fang", "zhang.san", "wang.fang", "zhang.san", "wang.fang"]


def test_a_conversation_assigned_or_resolved_meanwhile_leaves_the_line(
    synced, agents, online, write
):
    policy(synced, RR)
    taken, closed, left = write("meanwhile-1"), write("meanwhile-2"), write("meanwhile-3")
    services.assign(taken, agents[2], agents[2])
    services.set_status(closed, Session.Status.RESOLVED, agents[2])
    online.add(agents[0].pk)
    assert assignment.assign_waiting(synced.pk) == 1
    assert assignees([taken, closed, left]) == ["zhang.san", None, "li.si"]
    assert not WaitingConversation.objects.exists()


def test_a_letter_reopening_a_resolved_conversation_nobody_has_is_assigned(
    synced, agents, online, write
):
    session = write("reopen-1")
    services.set_status(session, Session.Status.RESOLVED, agents[0])
    policy(synced, RR)
    online.add(agents[2].pk)
    assert assignees([write("reopen-1")]) == ["zhang.san"]


def test_history_and_a_policy_that_is_off_assign_nothing(synced, agents, online, write):
    online.update(agent.pk for agent in agents)
    assert assignees([write("no-policy")]) == [None]
    policy(synced, AssignmentPolicy.Mode.OFF)
    assert assignees([write("off-policy")]) == [None]
    policy(synced, RR)
    assert assignees([write("history", age=timedelta(days=3))]) == [None]
    assert not WaitingConversation.objects.exists()


def test_switching_the_policy_off_empties_the_line(synced, agents, online, write):
    rule = policy(synced, RR)
    write("switched-1")
    rule.mode = AssignmentPolicy.Mode.OFF
    rule.save()
    online.add(agents[0].pk)
    assert assignment.assign_waiting(synced.pk) == 0
    assert not WaitingConversation.objects.exists()


def test_the_thread_says_system_assigned_and_the_agent_hears_of_it(
    synced, agents, online, write, client
):
    policy(synced, RR)
    online.add(agents[1].pk)
    session = write("said-1")
    line = Message.objects.get(session=session, kind=Message.Kind.ACTIVITY)
    assert (line.author, line.activity_user, line.activity) == (None, agents[1], "assigned")
    client.force_login(agents[1])
    html = client.get(session.get_absolute_url()).content.decode()
    assert "System assigned to 王芳" in html
    notice = Notification.objects.get(recipient=agents[1], kind=Kind.ASSIGNED)
    assert notice.actor is None and notice.session == session
    answer = client.get("/team/notifications/poll/", {"after": 0}).json()
    assert "System assigned you a conversation" in [item["title"] for item in answer["new"]]


def test_counters_stay_true_through_auto_assignment(synced, agents, online, write):
    from inbox import counters

    policy(synced, LEAST, cap=2)
    online.update(agent.pk for agent in agents)
    for n in range(8):
        write(f"counted-{n}")
    assert counters.stored(synced.pk) == counters.recount(synced.pk)


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_assigners_running_at_once_never_exceed_a_cap(synced, agents, online, monkeypatch):
    """Eight threads, each its own connection and transaction, hand out the same account's line
    of 40 conversations at once, three per call: the policy row's lock lets one at a time read
    the counters, so nobody ends above the cap of 4, and all 12 places are filled."""
    monkeypatch.setattr(assignment, "BATCH", 3)
    policy(synced, RR, cap=4)
    online.update(agent.pk for agent in agents)
    sessions = Session.objects.bulk_create(
        Session(
            account=synced,
            msg_session_id=f"race-{n}",
            last_message_at=synced.created_at,
        )
        for n in range(40)
    )
    WaitingConversation.objects.bulk_create(
        WaitingConversation(session=session, account=synced) for session in sessions
    )
    start = threading.Barrier(8)
    errors = []

    def assigner() -> None:
        try:
            start.wait()
            while assignment.assign_waiting(synced.pk):
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assigner) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loads = assignment.open_conversations(synced.pk, [agent.pk for agent in agents])
    assert loads == {agent.pk: 4 for agent in agents}
    assert WaitingConversation.objects.count() == 40 - 12
    assert connection.vendor == "postgresql"
