"""The labels' open counts (labels.LabelCounter) are maintained by triggers: after any sequence of
label changes, status changes, new letters and deletions they equal a recount, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from inbox.labels import counters, services
from inbox.labels.models import Label, LabelCounter
from inbox.models import Session
from tests.test_counters import Desk


def assert_label_counters_match_a_recount() -> None:
    assert counters.stored() == counters.recount()


class LabelDesk(Desk):
    """The counters' desk (sync pages and staff actions), with labels put on and taken off."""

    def __init__(self, make_item, seed: int) -> None:
        super().__init__(make_item, seed)
        self.labels = [
            Label.objects.create(name="退款"),
            Label.objects.create(name="VIP", account=self.accounts[0]),
            Label.objects.create(name="投诉", account=self.accounts[1]),
        ]

    def label_action(self) -> None:
        sessions = self.sessions()
        if not sessions:
            return
        agent = self.rng.choice(self.agents)
        label = self.rng.choice(self.labels)
        if label.account_id is not None:
            sessions = [s for s in sessions if s.account_id == label.account_id]
        chosen = self.rng.sample(sessions, k=min(len(sessions), self.rng.randint(1, 3)))
        if not chosen:
            return
        if self.rng.random() < 0.6:
            services.add_label(agent, chosen, label)
        else:
            services.remove_label(agent, chosen, label)

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.3:
            self.sync_page()
        elif roll < 0.65:
            self.label_action()
        elif roll < 0.97:
            self.staff_action()
        else:
            # A label deleted in admin: its counter rows go with it.
            label = self.labels.pop(self.rng.randrange(len(self.labels)))
            label.delete()
            self.labels.append(Label.objects.create(name=f"新 {self.rng.random()}"))


@pytest.mark.parametrize("seed", range(6))
def test_label_counters_equal_a_recount_after_any_sequence_of_operations(db, make_item, seed):
    desk = LabelDesk(make_item, seed)
    for _ in range(80):
        desk.step()
        assert_label_counters_match_a_recount()
    assert LabelCounter.objects.filter(sessions__gt=0).exists()


def test_open_counts_follow_the_status(db, make_item):
    desk = LabelDesk(make_item, seed=3)
    for _ in range(3):
        desk.sync_page()
    label = desk.labels[0]
    agent = desk.agents[0]
    sessions = list(Session.objects.filter(account=desk.accounts[0]))
    services.add_label(agent, sessions, label)

    def counted() -> tuple[int, int]:
        row = LabelCounter.objects.get(label=label, account=desk.accounts[0])
        return row.sessions, row.open

    assert counted() == (len(sessions), len(sessions))
    from inbox import services as inbox_services

    inbox_services.set_status(sessions[0], "resolved", agent)
    assert counted() == (len(sessions), len(sessions) - 1)
    sessions[1].delete()
    assert counted() == (len(sessions) - 1, len(sessions) - 2)


def test_deleting_an_account_or_a_label_leaves_no_counts_behind(db, make_item):
    desk = LabelDesk(make_item, seed=4)
    for _ in range(6):
        desk.sync_page()
    for label in desk.labels:
        sessions = Session.objects.all()
        if label.account_id:
            sessions = sessions.filter(account_id=label.account_id)
        services.add_label(desk.agents[0], sessions, label)
    gone = desk.accounts[0]
    gone.delete()
    assert not LabelCounter.objects.filter(account_id=gone.pk, sessions__gt=0).exists()
    shared = desk.labels[0]
    shared.delete()
    assert not LabelCounter.objects.filter(label_id=shared.pk).exists()
    assert_label_counters_match_a_recount()


def test_rebuild_repairs_counters_and_says_how_many_were_off(db, make_item, capsys):
    desk = LabelDesk(make_item, seed=5)
    for _ in range(4):
        desk.sync_page()
    services.add_label(desk.agents[0], Session.objects.all(), desk.labels[0])
    LabelCounter.objects.update(open=99)
    call_command("rebuild_counters")
    assert "were off" in capsys.readouterr().out
    assert_label_counters_match_a_recount()


def test_lost_triggers_are_put_back_after_migrate_and_recounted(db, make_item):
    """SQLite drops a table's triggers when a migration rebuilds it: post_migrate puts them
    back (counters.ensure_triggers) and recounts."""
    desk = LabelDesk(make_item, seed=6)
    for _ in range(3):
        desk.sync_page()
    with connection.cursor() as cursor:
        for statement in counters._statements(connection.vendor, install=False):
            cursor.execute(statement)
    services.add_label(desk.agents[0], Session.objects.all(), desk.labels[0])
    assert counters.stored() != counters.recount()
    counters.ensure_triggers()
    assert_label_counters_match_a_recount()
    services.remove_label(desk.agents[0], Session.objects.all()[:1], desk.labels[0])
    assert_label_counters_match_a_recount()
