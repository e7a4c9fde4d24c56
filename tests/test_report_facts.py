"""Report facts: kept incrementally by sync, replies and status changes, and equal to a rebuild
from the messages after any sequence of operations."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Account
from inbox import services
from inbox.models import Message, Session
from inbox.reports import facts
from inbox.reports.models import Episode, LetterHour, ReplyFact
from tests.conftest import store_items

User = get_user_model()


def snapshot() -> dict:
    """Every fact, without the ids a replay renumbers."""
    return {
        "episodes": sorted(
            Episode.objects.values_list(
                *(field.attname for field in Episode._meta.concrete_fields if not field.primary_key)
            ),
            key=repr,
        ),
        "replies": sorted(
            (
                message_id,
                session_id,
                responder,
                sent_at,
                waited_from,
                opened_at,
            )
            for message_id, session_id, responder, sent_at, waited_from, opened_at in (
                ReplyFact.objects.values_list(
                    "message_id",
                    "session_id",
                    "responder_id",
                    "sent_at",
                    "waited_from",
                    "episode__opened_at",
                )
            )
        ),
        "hours": sorted(
            LetterHour.objects.exclude(incoming=0, replies=0).values_list(
                "account_id", "hour", "incoming", "replies"
            )
        ),
    }


class Desk:
    """Two accounts, two agents, and a random mix of sync pages (in order, late, re-delivered,
    system notices, letters from the phone) and what staff do (reply, send, resolve, reopen,
    assign, snooze and wake)."""

    def __init__(self, make_item, seed: int) -> None:
        self.rng = random.Random(seed)
        self.make_item = make_item
        self.accounts = [
            Account.objects.create(name=f"Shop {n}", app_id=f"wx_facts_{n}", token="t")
            for n in range(2)
        ]
        self.agents = [User.objects.create_user(f"agent{n}") for n in range(2)]
        for account in self.accounts:
            account.members.add(*self.agents)
        self.clock = int(time.time()) - 3 * 3600
        self.pages = 0
        self.seen_ids: list[int] = []

    def sync_page(self) -> None:
        account = self.rng.choice(self.accounts)
        items = []
        for _ in range(self.rng.randint(1, 6)):
            self.clock += self.rng.randint(0, 120)
            late = self.rng.random() < 0.15
            if self.seen_ids and self.rng.random() < 0.1:
                new_msg_id = self.rng.choice(self.seen_ids)
            else:
                new_msg_id = self.rng.randrange(10**12, 10**13)
                self.seen_ids.append(new_msg_id)
            items.append(
                self.make_item(
                    content__msgSessionId=f"s{self.rng.randrange(4)}@findermsg",
                    content__isSender=int(self.rng.random() < 0.3),
                    content__msg__MsgType=10000 if self.rng.random() < 0.1 else 1,
                    content__msg__NewMsgId=new_msg_id,
                    content__msg__CreateTime=self.clock - (3600 if late else 0),
                )
            )
        self.pages += 1
        store_items(account, items, key_buff=f"page-{self.pages}")

    def staff_action(self) -> None:
        sessions = list(Session.objects.select_related("account", "assignee").order_by("pk"))
        if not sessions:
            return
        session = self.rng.choice(sessions)
        agent = self.rng.choice(self.agents)
        action = self.rng.choice(
            ["reply", "send", "send", "resolve", "resolve", "open", "assign", "snooze", "wake"]
        )
        if action == "reply":
            services.compose_reply(session, agent, "好的", uuid.uuid4())
        elif action == "send":
            sending = Message.objects.filter(delivery=Message.Delivery.SENDING).first()
            if sending is not None:
                services._mark_sent(sending, self.rng.randrange(10**14, 10**15))
        elif action in ("resolve", "open"):
            services.set_status(session, "resolved" if action == "resolve" else "open", agent)
        elif action == "assign":
            services.assign(session, self.rng.choice([agent, None]), agent)
        elif action == "snooze":
            services.set_status(
                session, "snoozed", agent, snooze_until=timezone.now() + timezone.timedelta(hours=1)
            )
        elif action == "wake":
            services.reopen_due_snoozed_sessions(timezone.now() + timezone.timedelta(hours=2))


@pytest.mark.parametrize("seed", range(8))
def test_facts_kept_as_things_happen_equal_a_rebuild(db, make_item, seed):
    desk = Desk(make_item, seed)
    for _ in range(70):
        if desk.rng.random() < 0.45:
            desk.sync_page()
        else:
            desk.staff_action()
    incremental = snapshot()
    call_command("rebuild_report_facts", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert snapshot() == incremental
    # Something was folded, not nothing compared with nothing.
    assert incremental["episodes"] and incremental["replies"] and incremental["hours"]


@pytest.fixture
def shop(db, member) -> Account:
    """An account with nothing synced yet, worked by `member`."""
    account = Account.objects.create(name="Hand-built", app_id="wx_hand_built", token="t")
    account.members.add(member)
    return account


def at(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 3, 2, hour, minute, tzinfo=UTC).timestamp())


def test_a_reply_from_the_phone_answers_for_the_account(shop, make_item):
    store_items(
        shop,
        [
            make_item(content__msgSessionId="p@findermsg", content__msg__CreateTime=at(9)),
            make_item(
                content__msgSessionId="p@findermsg",
                content__isSender=1,
                content__msg__CreateTime=at(9, 5),
            ),
        ],
        "k1",
    )
    episode = Episode.objects.get(account=shop)
    assert episode.first_letter_at == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert episode.first_response_at == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert episode.first_responder_id is None
    reply = ReplyFact.objects.get(account=shop)
    assert reply.responder_id is None and reply.waited_from == episode.first_letter_at


def test_system_notices_notes_and_unsent_replies_are_no_letters(shop, make_item, member):
    store_items(
        shop,
        [
            make_item(content__msgSessionId="n@findermsg", content__msg__CreateTime=at(9)),
            make_item(
                content__msgSessionId="n@findermsg",
                content__msg__MsgType=10000,
                content__isSender=1,
                content__msg__CreateTime=at(9, 1),
            ),
        ],
        "k1",
    )
    session = Session.objects.get(account=shop)
    services.add_note(session, member, "内部备注", uuid.uuid4())
    services.compose_reply(session, member, "稍等", uuid.uuid4())  # still sending
    episode = Episode.objects.get(account=shop)
    assert (episode.incoming, episode.replies, episode.first_response_at) == (1, 0, None)
    assert not ReplyFact.objects.filter(account=shop).exists()


def test_a_reply_sent_from_here_counts_for_its_agent_when_the_upstream_takes_it(
    shop, make_item, member
):
    store_items(shop, [make_item(content__msgSessionId="a@findermsg")], "k1")
    session = Session.objects.get(account=shop)
    reply = services.compose_reply(session, member, "您好", uuid.uuid4())
    assert not ReplyFact.objects.filter(account=shop).exists()
    services._mark_sent(reply, 10**15)
    episode = Episode.objects.get(account=shop)
    assert episode.first_responder_id == member.pk
    assert episode.first_response_at == reply.created_at


def test_resolving_closes_and_a_new_letter_opens_a_new_episode(shop, make_item, member):
    store_items(
        shop, [make_item(content__msgSessionId="r@findermsg", content__msg__CreateTime=at(9))], "k1"
    )
    session = Session.objects.get(account=shop)
    services.assign(session, member, member)
    services.set_status(session, "resolved", member)
    first = Episode.objects.get(account=shop)
    assert first.resolver_id == member.pk and first.assignee_id == member.pk
    store_items(shop, [make_item(content__msgSessionId="r@findermsg")], "k2")
    episodes = list(Episode.objects.filter(account=shop).order_by("opened_at"))
    assert len(episodes) == 2 and episodes[1].resolved_at is None
    assert Session.objects.get(account=shop).status == "open"


def test_letters_per_hour_are_counted_once_however_often_a_page_comes(shop, make_item):
    items = [
        make_item(content__msgSessionId="h@findermsg", content__msg__CreateTime=at(9, m))
        for m in (1, 2, 59)
    ]
    store_items(shop, items, "k1")
    store_items(shop, items, "k2")
    assert list(LetterHour.objects.filter(account=shop).values_list("hour", "incoming")) == [
        (datetime(2026, 3, 2, 9, tzinfo=UTC), 3)
    ]
    facts.rebuild_hours(shop.pk)
    assert list(LetterHour.objects.filter(account=shop).values_list("incoming", flat=True)) == [3]
