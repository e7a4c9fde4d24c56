"""A few weeks of made-up history for `manage.py demo`, so the report page has something to show
on the first run: viewers writing (more in the evening and on weekdays), the account answering
from its phone, agents replying here, conversations resolved, and some left waiting.

Everything goes through the real paths: letters as synthetic sync pages through `store_page`
(under the account's lease), replies through `services.compose_reply` and the send's recording,
resolutions through `services.set_status`. The clock those services read is moved through the
weeks while they run, and the send task a reply would queue is not queued (the sandbox never
saw these conversations). Seeded, so every demo database gets the same history; made once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import finder_name, letter_item
from inbox import services
from inbox.labels.demo import label_demo_sessions
from inbox.models import Message, Session
from inbox.payloads import parse_sync_page
from inbox.suggestions import pairing, scripted
from inbox.sync import account_lease, store_page
from inbox.viewers.demo import add_sister_account

DAYS = 21
SESSION_PREFIX = "demo-history-"


class _Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def _moved_clock(start: datetime) -> Iterator[_Clock]:
    clock = _Clock(start)
    with (
        mock.patch("django.utils.timezone.now", clock),
        mock.patch("inbox.queue.send_reply_later", lambda message_id: None),
    ):
        yield clock


def has_history(account: Account) -> bool:
    return Session.objects.filter(
        account=account, msg_session_id__startswith=SESSION_PREFIX
    ).exists()


def make_history(
    account: Account,
    agents: list,
    *,
    seed: int = 10,
    per_day: int = 5,
    days: int = DAYS,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Make `days` days of conversations ending now, a transaction per day, until done or
    `stop()`; returns how many letters it stored. Nothing else may sync the account meanwhile
    (the history's pages move its cursor, put back at the end)."""
    if has_history(account) or not agents:
        return 0
    add_sister_account(account)
    rng = random.Random(seed)
    end = timezone.now().replace(microsecond=0)
    me = finder_name(account.app_id)
    cursor = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
    stored = 0
    with _moved_clock(end - timedelta(days=days)) as clock:
        for day in range(days, 0, -1):
            if stop():
                break
            with transaction.atomic():
                day_start = end - timedelta(days=day)
                stored += _one_day(account, agents, rng, clock, day_start, me, per_day)
    # The sandbox's own letters are read from where the cursor was.
    Account.objects.filter(pk=account.pk).update(key_buff=cursor)
    pairing.pair_new_answers(account.pk)  # the answers from the phone, for suggested replies
    label_demo_sessions(account, agents)  # a few labels, so chips and filters show
    return stored


def _one_day(account, agents, rng, clock, day_start, me, per_day) -> int:
    """One day's conversations, every step at its own time: the viewer's letters (a sync page),
    an answer from the phone (in the page) or by an agent here, and most of them resolved."""
    weekend = day_start.astimezone(timezone.get_default_timezone()).weekday() >= 5
    conversations = rng.randint(per_day // 2, per_day) if weekend else per_day + rng.randint(0, 6)
    steps = []  # (when, order, what, details)
    letters = 0
    for number in range(conversations):
        hour = min(23, max(0, int(rng.gauss(15, 4))))
        moment = day_start + timedelta(hours=hour, minutes=rng.randrange(60))
        session_id = f"{SESSION_PREFIX}{day_start:%m%d}-{number}"
        peer = finder_name(session_id)
        items = []
        # Questions viewers keep asking, worded many ways, and the team's usual answers (not the
        # sandbox's live texts: the demo's own checks look for those).
        exchange = scripted.exchange(rng)
        for text in exchange.letters:
            items.append(_letter(rng, me, peer, session_id, moment, text, is_sender=False))
            moment += timedelta(seconds=rng.randint(5, 90))
        answered = moment + timedelta(seconds=int(rng.lognormvariate(5.5, 1.6)))
        answer = rng.random()
        if answer < 0.35:
            items.append(_letter(rng, me, peer, session_id, answered, exchange.answer, True))
        elif answer < 0.9:
            steps.append((answered, 1, "reply", (session_id, rng.choice(agents), exchange.answer)))
        if answer < 0.9 and rng.random() < 0.8:
            resolved = answered + timedelta(minutes=rng.randint(2, 300))
            steps.append((resolved, 2, "resolve", (session_id, rng.choice(agents), "")))
        stored = datetime.fromtimestamp(items[-1]["content"]["msg"]["CreateTime"], tz=UTC)
        steps.append((stored + timedelta(seconds=3), 0, "sync", items))
        letters += len(items)
    for moment, _, what, details in sorted(steps, key=lambda step: step[:2]):
        clock.now = moment
        if what == "sync":
            _store(account, details)
            continue
        session_id, agent, text = details
        session = Session.objects.select_related("account").get(
            account=account, msg_session_id=session_id
        )
        if what == "reply":
            reply = services.compose_reply(session, agent, text, uuid.uuid4())
            services._mark_sent(reply, rng.randrange(2**62, 2**63))
        else:
            services.set_status(session, Session.Status.RESOLVED, agent)
    return letters


def _letter(rng, me, peer, session_id, moment, content, is_sender) -> dict:
    number = rng.randrange(2**62, 2**63)
    return letter_item(
        seq=number % 10**9,
        new_msg_id=number,
        me=me,
        peer=peer,
        is_sender=is_sender,
        msg_type=int(Message.Type.TEXT),  # a plain int, as JSON has it: the parser wants one
        content=content,
        create_time=int(moment.timestamp()),
        msg_session_id=session_id,
    )


def _store(account: Account, items: list[dict]) -> None:
    """Letters as the sync worker stores a page of them."""
    expected = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
    page = parse_sync_page({"list": items, "keyBuff": f"demo-history-{uuid.uuid4().hex}"})
    with account_lease(account) as lease:
        store_page(account, page, lease_token=lease, expected=expected)
