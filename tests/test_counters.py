"""The sidebar's counts (inbox.SessionCounter) are maintained by triggers, never recounted on a
request: after any sequence of the operations that move them they equal a recount."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import counters, services
from inbox.models import Session, SessionCounter
from tests.conftest import store_items

User = get_user_model()


def assert_counters_match_a_recount() -> None:
    assert counters.stored() == counters.recount()


class Desk:
    """Two accounts, two agents in both, and a random mix of what sync and staff do."""

    def __init__(self, make_item, seed: int) -> None:
        self.rng = random.Random(seed)
        self.make_item = make_item
        self.accounts = [
            Account.objects.create(name=f"Shop {n}", app_id=f"wx_counted_{n}", token="t")
            for n in range(2)
        ]
        self.agents = [User.objects.create_user(f"agent{n}") for n in range(2)]
        for account in self.accounts:
            account.members.add(*self.agents)
        self.clock = 1_706_000_000
        self.pages = 0
        self.sent_ids: list[int] = []

    def sessions(self) -> list[Session]:
        return list(Session.objects.select_related("account", "assignee").order_by("pk"))

    def sync_page(self) -> None:
        account = self.rng.choice(self.accounts)
        items = []
        for _ in range(self.rng.randint(1, 8)):
            self.clock += self.rng.randint(0, 90)
            if self.sent_ids and self.rng.random() < 0.2:
                new_msg_id = self.rng.choice(self.sent_ids)  # a re-delivery
            else:
                new_msg_id = self.rng.randrange(10**12, 10**13)
                self.sent_ids.append(new_msg_id)
            items.append(
                self.make_item(
                    content__msgSessionId=f"s{self.rng.randrange(6)}@findermsg",
                    content__isSender=int(self.rng.random() < 0.3),
                    content__msg__NewMsgId=new_msg_id,
                    content__msg__CreateTime=self.clock,
                )
            )
        self.pages += 1
        store_items(account, items, key_buff=f"page-{self.pages}")

    def staff_action(self) -> None:
        sessions = self.sessions()
        if not sessions:
            return
        session = self.rng.choice(sessions)
        agent = self.rng.choice(self.agents)
        action = self.rng.choice(
            ["read", "status", "snooze", "assign", "unassign", "reply", "wake", "delete"]
        )
        if action == "read":
            services.mark_read(session)
        elif action == "status":
            status = self.rng.choice(["open", "pending", "resolved"])
            services.set_status(session, status, agent)
        elif action == "snooze":
            services.set_status(
                session, "snoozed", agent, snooze_until=timezone.now() + timedelta(hours=1)
            )
        elif action == "assign":
            services.assign(session, agent, agent)
        elif action == "unassign":
            services.assign(session, None, agent)
        elif action == "reply":
            services.compose_reply(session, agent, "好的", uuid.uuid4())
        elif action == "wake":
            services.reopen_due_snoozed_sessions(timezone.now() + timedelta(hours=2))
        elif action == "delete" and self.rng.random() < 0.2:
            session.delete()


@pytest.mark.parametrize("seed", range(6))
def test_counters_equal_a_recount_after_any_sequence_of_operations(db, make_item, seed):
    desk = Desk(make_item, seed)
    for _ in range(60):
        if desk.rng.random() < 0.4:
            desk.sync_page()
        else:
            desk.staff_action()
        assert_counters_match_a_recount()
    # Something was counted, not just nothing matched nothing.
    assert SessionCounter.objects.filter(sessions__gt=0).exists()


def test_deleting_a_user_moves_their_sessions_to_unassigned(db, make_item):
    desk = Desk(make_item, seed=1)
    for _ in range(4):
        desk.sync_page()
    leaver = User.objects.create_user("leaver")
    desk.accounts[0].members.add(leaver)
    for session in Session.objects.filter(account=desk.accounts[0]):
        services.assign(session, leaver, leaver)
    assert SessionCounter.objects.filter(assignee_id=leaver.pk, sessions__gt=0).exists()

    leaver.delete()

    assert not SessionCounter.objects.filter(assignee_id=leaver.pk, sessions__gt=0).exists()
    assert_counters_match_a_recount()


def test_deleting_an_account_leaves_no_counts_behind(db, make_item):
    desk = Desk(make_item, seed=2)
    for _ in range(6):
        desk.sync_page()
    gone = desk.accounts[0]
    assert SessionCounter.objects.filter(account=gone, sessions__gt=0).exists()

    gone.delete()

    assert not SessionCounter.objects.filter(account_id=gone.pk, sessions__gt=0).exists()
    assert_counters_match_a_recount()


def test_a_reply_from_here_reads_the_session_and_its_counts(db, make_item):
    desk = Desk(make_item, seed=3)
    store_items(
        desk.accounts[0],
        [make_item(content__msgSessionId="s@findermsg") for _ in range(3)],
        key_buff="one",
    )
    session = Session.objects.get()
    assert session.unread_count == 3

    services.compose_reply(session, desk.agents[0], "您好", uuid.uuid4())

    assert Session.objects.get().unread_count == 0
    assert not SessionCounter.objects.filter(has_unread=True, sessions__gt=0).exists()
    assert_counters_match_a_recount()


def test_an_outgoing_letter_in_a_page_reads_only_the_letters_before_it(db, make_item):
    desk = Desk(make_item, seed=4)
    letters = [
        make_item(content__msgSessionId="s@findermsg", content__msg__CreateTime=100),
        make_item(content__msgSessionId="s@findermsg", content__msg__CreateTime=101),
        make_item(
            content__msgSessionId="s@findermsg", content__isSender=1, content__msg__CreateTime=102
        ),
        make_item(content__msgSessionId="s@findermsg", content__msg__CreateTime=103),
    ]
    store_items(desk.accounts[0], letters, key_buff="one")

    assert Session.objects.get().unread_count == 1
    assert_counters_match_a_recount()


def test_rebuild_counters_repairs_counters_that_drifted(db, make_item, capsys):
    desk = Desk(make_item, seed=5)
    for _ in range(5):
        desk.sync_page()
    right = counters.stored()
    SessionCounter.objects.filter(pk=SessionCounter.objects.order_by("pk")[0].pk).update(
        sessions=999, unread=999
    )
    SessionCounter.objects.create(
        account_id=desk.accounts[1].pk, status="pending", assignee_id=0, has_unread=True, sessions=5
    )

    call_command("rebuild_counters")

    assert counters.stored() == right == counters.recount()
    assert "2 counter row(s) were off" in capsys.readouterr().out


def test_the_sidebar_shows_the_counters(client, db, make_item):
    desk = Desk(make_item, seed=6)
    for _ in range(6):
        desk.sync_page()
    agent = desk.agents[0]
    mine = Session.objects.order_by("pk")[0]
    services.assign(mine, agent, agent)
    services.set_status(mine, "pending", agent)
    client.force_login(agent)

    response = client.get(reverse("inbox:index"))

    links = {
        str(link["label"]): link["count"]
        for link in response.context["view_links"] + response.context["status_links"]
    }
    sessions = Session.objects.all()
    assert links["All conversations"] == sessions.count()
    assert links["Unread"] == sessions.filter(unread_count__gt=0).count()
    assert links["Mine"] == 1
    assert links["Unassigned"] == sessions.count() - 1
    assert links["Pending"] == 1
    unread = sum(s.unread_count for s in sessions)
    assert response.context["unread_total"] == unread > 0


def test_migrate_puts_back_triggers_that_a_table_rebuild_dropped(db, make_item):
    desk = Desk(make_item, seed=7)
    desk.sync_page()
    # What SQLite's copy-and-rename of a table for an altered column does to its triggers.
    with connection.cursor() as cursor:
        for statement in counters._statements(connection.vendor, install=False):
            cursor.execute(statement)
    desk.sync_page()
    assert counters.stored() != counters.recount()

    call_command("migrate", verbosity=0)

    assert_counters_match_a_recount()
    desk.sync_page()
    assert_counters_match_a_recount()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_agents_reading_one_thread_at_once_subtract_its_unread_letters_once(make_item):
    desk = Desk(make_item, seed=8)
    store_items(
        desk.accounts[0],
        [make_item(content__msgSessionId="s@findermsg") for _ in range(3)],
        key_buff="one",
    )
    pk = Session.objects.get().pk
    # Each agent's request loaded the session while it still had its three unread letters.
    loaded = [Session.objects.get(pk=pk) for _ in range(4)]
    barrier = threading.Barrier(len(loaded))

    def read(session: Session) -> None:
        try:
            barrier.wait()
            services.mark_read(session)
        finally:
            connection.close()

    threads = [threading.Thread(target=read, args=[session]) for session in loaded]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Session.objects.get().unread_count == 0
    assert_counters_match_a_recount()
    assert SessionCounter.objects.get(has_unread=False, sessions__gt=0).unread == 0
