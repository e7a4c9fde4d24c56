"""The Celery tasks, called in-process: the fan-out, one pass per account, backoff and pauses,
peer nicknames, snoozed sessions. (tests/test_worker.py runs them in a real worker.)"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connections
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import EXAMPLE_ACCOUNT_FINDER, PEERS
from inbox import sync, tasks
from inbox.models import Message, Session
from inbox.services import reopen_due_snoozed_sessions
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

SYNC = "/finder/syncPrivateLetterMsg"
CONTACTS = "/finder/contactList"
UPSTREAM_LETTERS = 23  # the example's 5 letters and the sandbox's scripted 18


@pytest.fixture
def queued(monkeypatch) -> dict[str, list]:
    """What the tasks queue, by task name, instead of sending it to a broker."""
    sent: dict[str, list] = {"sync_account": [], "fill_peer_nicknames": []}
    for name, calls in sent.items():
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda *args, _c=calls: _c.append(args))
    return sent


def make_account(app_id: str, **fields) -> Account:
    return Account.objects.create(name=app_id, app_id=app_id, token="t", **fields)


def refreshed(account: Account) -> Account:
    account.refresh_from_db()
    return account


# --- the fan-out ---------------------------------------------------------------------------


def test_fan_out_queues_only_enabled_unpaused_accounts_whose_time_has_come(db, queued):
    now = timezone.now()
    never_synced = make_account("never")
    overdue = make_account("overdue", next_sync_at=now - timedelta(seconds=1))
    make_account("later", next_sync_at=now + timedelta(seconds=30))
    make_account("off", enabled=False)
    make_account("paused", paused_reason="token rejected")

    assert tasks.sync_due_accounts() == 2

    assert sorted(queued["sync_account"]) == sorted([(never_synced.pk,), (overdue.pk,)])


def test_fan_out_claims_what_it_queues_so_the_next_tick_does_not_queue_it_again(
    db, queued, settings
):
    settings.SYNC_LEASE_SECONDS = 90
    account = make_account("due")
    before = timezone.now()

    tasks.sync_due_accounts()
    assert tasks.sync_due_accounts() == 0

    assert queued["sync_account"] == [(account.pk,)]
    claimed_until = refreshed(account).next_sync_at
    assert before + timedelta(seconds=90) <= claimed_until <= timezone.now() + timedelta(seconds=90)


def test_a_claim_whose_task_was_lost_expires_and_the_account_is_queued_again(db, queued):
    account = make_account("due")
    tasks.sync_due_accounts()
    Account.objects.filter(pk=account.pk).update(next_sync_at=timezone.now() - timedelta(seconds=1))

    tasks.sync_due_accounts()

    assert queued["sync_account"] == [(account.pk,), (account.pk,)]


def test_fan_out_query_count_does_not_grow_with_the_number_of_due_accounts(
    db, queued, django_assert_max_num_queries
):
    for n in range(30):
        make_account(f"due-{n}")
    with django_assert_max_num_queries(4):
        assert tasks.sync_due_accounts() == 30


# --- one pass ------------------------------------------------------------------------------


def test_a_pass_stores_the_letters_and_sets_the_real_next_sync_time(account, sandbox, queued):
    Account.objects.filter(pk=account.pk).update(next_sync_at=timezone.now() + timedelta(hours=1))

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert Message.objects.filter(account=account).count() == UPSTREAM_LETTERS
    assert account.failure_streak == 0
    assert account.last_success_at is not None
    assert account.next_sync_at - account.last_success_at == timedelta(
        seconds=account.poll_interval
    )
    assert queued["sync_account"] == []  # caught up: nothing more to queue


def test_a_pass_that_stops_at_its_page_cap_queues_the_next_one(account, sandbox, queued, settings):
    settings.SYNC_MAX_PAGES_PER_PASS = 1

    tasks.sync_account(account.pk)

    assert queued["sync_account"] == [(account.pk,)]


def test_a_pass_that_created_sessions_queues_a_nickname_lookup_for_them(account, sandbox, queued):
    tasks.sync_account(account.pk)

    [(session_ids,)] = queued["fill_peer_nicknames"]
    assert sorted(session_ids) == sorted(Session.objects.values_list("pk", flat=True))

    queued["fill_peer_nicknames"].clear()
    sandbox.add_letter(SANDBOX_APP_ID, "还在吗？", peer=PEERS[1])
    tasks.sync_account(account.pk)
    assert queued["fill_peer_nicknames"] == []  # a letter in a known session looks nothing up


def test_a_second_run_while_one_holds_the_lease_exits_quietly_and_says_so(
    account, sandbox, queued, caplog
):
    caplog.set_level(logging.INFO, logger="inbox.tasks")
    with sync.account_lease(account):
        tasks.sync_account(account.pk)

    assert sandbox.calls_to(SYNC) == []
    assert Message.objects.count() == 0
    assert refreshed(account).failure_streak == 0
    assert "already being synced" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_on_one_account_do_the_work_once(sandbox_server, sandbox, queued):
    account = Account.objects.create(
        name="Shop", app_id=SANDBOX_APP_ID, token=SANDBOX_TOKEN, base_url=sandbox_server.base_url
    )
    # The first page is slow, so the first run still holds the lease when the second starts.
    sandbox.inject("slow", seconds=1.0)

    def first_run() -> None:
        tasks.sync_account(account.pk)
        connections.close_all()  # this thread's own, or the test database cannot be dropped

    first = threading.Thread(target=first_run)
    first.start()
    while not sandbox.calls_to(SYNC):
        threading.Event().wait(0.01)

    tasks.sync_account(account.pk)
    first.join(timeout=30)

    passes_from_the_start = [call for call in sandbox.calls_to(SYNC) if not call["body"]["keyBuff"]]
    assert len(passes_from_the_start) == 1
    assert Message.objects.count() == UPSTREAM_LETTERS
    assert Message.objects.values("new_msg_id").distinct().count() == UPSTREAM_LETTERS


def test_a_paused_or_switched_off_account_is_not_synced_even_if_queued(account, sandbox, queued):
    Account.objects.filter(pk=account.pk).update(paused_reason="token rejected")
    tasks.sync_account(account.pk)
    Account.objects.filter(pk=account.pk).update(paused_reason="", enabled=False)
    tasks.sync_account(account.pk)

    assert sandbox.calls_to(SYNC) == []


def test_a_task_for_a_deleted_account_does_nothing(db, queued):
    tasks.sync_account(987654)


# --- failures --------------------------------------------------------------------------------


def test_backoff_grows_with_each_failure_and_resets_on_success(account, sandbox, queued):
    delays = []
    for streak in (1, 2, 3):
        sandbox.inject("ret_500")
        before = timezone.now()
        tasks.sync_account(account.pk)
        account = refreshed(account)
        assert account.failure_streak == streak
        assert "系统繁忙" in account.last_error
        delays.append((account.next_sync_at - before).total_seconds())
    # poll_interval·2^streak less up to 20% jitter: 8–10 s, 16–20 s, 32–40 s.
    interval = account.poll_interval
    for streak, delay in enumerate(delays, start=1):
        assert interval * 2**streak * 0.8 - 1 <= delay <= interval * 2**streak
    assert delays[0] < delays[1] < delays[2]

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert account.failure_streak == 0
    assert account.paused_reason == ""
    assert account.next_sync_at - account.last_success_at == timedelta(
        seconds=account.poll_interval
    )


def test_backoff_is_capped(account, sandbox, queued, settings):
    settings.SYNC_BACKOFF_MAX_SECONDS = 30
    Account.objects.filter(pk=account.pk).update(failure_streak=12)
    sandbox.inject("ret_500")
    before = timezone.now()

    tasks.sync_account(account.pk)

    assert refreshed(account).next_sync_at - before <= timedelta(seconds=30)


def test_a_rejected_token_pauses_the_account(account, sandbox, queued):
    sandbox.inject("token_expired")

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert "不可用或已过期" in account.paused_reason
    assert SANDBOX_TOKEN not in account.paused_reason + account.last_error
    assert account.outage_since is None
    assert not Account.objects.due_for_sync(timezone.now() + timedelta(days=1)).exists()


# --- outages: the device offline or gone --------------------------------------------------


@pytest.mark.parametrize("device, words", [("offline", "微信已离线"), ("missing", "设备不存在")])
def test_an_offline_or_missing_device_is_an_outage_not_a_pause(
    account, sandbox, queued, device, words
):
    sandbox.set_device(SANDBOX_APP_ID, device)
    before = timezone.now()

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert account.paused_reason == ""
    assert account.enabled
    assert before <= account.outage_since <= timezone.now()
    assert words in account.outage_reason
    assert SANDBOX_TOKEN not in account.outage_reason + account.last_error
    # Still due later, by itself: no operator needed.
    assert Account.objects.due_for_sync(timezone.now() + timedelta(minutes=5)).exists()


def test_an_outage_is_probed_on_a_slow_schedule_doubling_to_a_cap(
    account, sandbox, queued, settings
):
    settings.SYNC_OUTAGE_PROBE_MIN_SECONDS = 60
    settings.SYNC_OUTAGE_PROBE_MAX_SECONDS = 300
    sandbox.set_device(SANDBOX_APP_ID, "offline")
    delays, since = [], None
    for _ in range(5):
        before = timezone.now()
        tasks.sync_account(account.pk)
        account = refreshed(account)
        delays.append((account.next_sync_at - before).total_seconds())
        since = since or account.outage_since
        assert account.outage_since == since  # the outage began at the first failure

    # 60, 120, 240, 300, 300 s, less up to 20% jitter: between one and five minutes.
    for delay, expected in zip(delays, (60, 120, 240, 300, 300), strict=True):
        assert expected * 0.8 - 1 <= delay <= expected
    assert len(sandbox.calls_to(SYNC)) == 5  # one request per probe, no retries


def test_the_first_successful_probe_ends_the_outage_by_itself(account, sandbox, queued):
    sandbox.set_device(SANDBOX_APP_ID, "offline")
    tasks.sync_account(account.pk)
    assert refreshed(account).outage_since is not None

    sandbox.set_device(SANDBOX_APP_ID, "online")
    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert (account.outage_since, account.outage_reason, account.failure_streak) == (None, "", 0)
    assert Message.objects.filter(account=account).count() == UPSTREAM_LETTERS


def test_a_wrong_token_pauses_the_account(account, sandbox, queued):
    Account.objects.filter(pk=account.pk).update(token="not-the-token-1234")

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert "不可用或已过期" in account.paused_reason
    assert "not-the-token-1234" not in account.paused_reason + account.last_error


def test_a_pass_that_runs_past_its_time_limit_is_recorded_as_a_failure(
    account, queued, monkeypatch
):
    def too_slow(account, **kwargs):
        with sync.account_lease(account):
            raise SoftTimeLimitExceeded()

    monkeypatch.setattr(sync, "sync_account", too_slow)

    tasks.sync_account(account.pk)

    account = refreshed(account)
    assert account.failure_streak == 1
    assert "time limit" in account.last_error
    assert account.sync_lease_until is None  # released, so the next pass need not wait


# --- nicknames -----------------------------------------------------------------------------


@pytest.fixture
def synced(account, sandbox, queued) -> Account:
    Account.objects.filter(pk=account.pk).update(own_username=EXAMPLE_ACCOUNT_FINDER)
    tasks.sync_account(account.pk)
    sandbox.calls.clear()
    return refreshed(account)


def test_nicknames_are_filled_with_one_contact_list_call_per_new_peer(synced, sandbox):
    sessions = Session.objects.filter(account=synced)

    named = tasks.fill_peer_nicknames([session.pk for session in sessions])

    nicknames = {peer.username: peer.nickname for peer in PEERS}
    peers = {session.peer_username for session in sessions}
    assert len(sandbox.calls_to(CONTACTS)) == len(peers)
    assert named == sum(1 for session in sessions if session.peer_username in nicknames)
    for session in Session.objects.filter(account=synced):
        assert session.peer_nickname == nicknames.get(session.peer_username, "")


def test_a_named_session_is_not_looked_up_again(synced, sandbox):
    session_ids = list(Session.objects.values_list("pk", flat=True))
    tasks.fill_peer_nicknames(session_ids)
    sandbox.calls.clear()

    tasks.fill_peer_nicknames(session_ids)

    known = {peer.username for peer in PEERS}
    unknown = Session.objects.exclude(peer_username__in=known).values("peer_username").distinct()
    assert len(sandbox.calls_to(CONTACTS)) == unknown.count()


def test_a_failed_lookup_is_logged_and_the_others_go_on(synced, sandbox, caplog):
    sandbox.inject("ret_500", path=CONTACTS)
    session_ids = list(Session.objects.values_list("pk", flat=True))

    named = tasks.fill_peer_nicknames(session_ids)

    assert named == Session.objects.exclude(peer_nickname="").count() > 0
    assert "contactList for a peer failed" in caplog.text


def test_naming_a_session_bumps_it_for_the_live_session_list(synced, sandbox):
    session = Session.objects.get(peer_username=PEERS[1].username)
    before = session.updated_at

    tasks.fill_peer_nicknames([session.pk])

    session.refresh_from_db()
    assert session.peer_nickname == PEERS[1].nickname
    assert session.updated_at > before


# --- snoozed sessions --------------------------------------------------------------------------


def test_snoozed_sessions_whose_time_has_come_reopen(synced):
    now = timezone.now()
    due, later, resolved = Session.objects.filter(account=synced).order_by("pk")[:3]
    Session.objects.filter(pk=due.pk).update(
        status=Session.Status.SNOOZED, snoozed_until=now - timedelta(minutes=1)
    )
    Session.objects.filter(pk=later.pk).update(
        status=Session.Status.SNOOZED, snoozed_until=now + timedelta(hours=1)
    )
    Session.objects.filter(pk=resolved.pk).update(status=Session.Status.RESOLVED)

    assert tasks.reopen_snoozed_sessions() == 1

    due.refresh_from_db()
    later.refresh_from_db()
    resolved.refresh_from_db()
    assert (due.status, due.snoozed_until) == (Session.Status.OPEN, None)
    assert due.updated_at >= now
    assert later.status == Session.Status.SNOOZED
    assert resolved.status == Session.Status.RESOLVED
    assert reopen_due_snoozed_sessions() == 0


# --- configuration -------------------------------------------------------------------------


def test_beat_runs_the_fan_out_every_few_seconds_and_the_housekeeping(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["sync-due-accounts"]["task"] == "inbox.tasks.sync_due_accounts"
    assert schedule["sync-due-accounts"]["schedule"] <= 5
    assert schedule["reopen-snoozed-sessions"]["task"] == "inbox.tasks.reopen_snoozed_sessions"


def test_beat_sweeps_for_replies_whose_send_task_was_lost_every_minute(settings):
    from inbox.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["requeue-unclaimed-replies"]
    assert entry["task"] == "inbox.tasks.requeue_unclaimed_replies"
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 60 < settings.REPLY_REQUEUE_AFTER_SECONDS
    # A tick nobody ran in time is dropped: the next one does the same work.
    assert entry["options"]["expires"] <= 2 * entry["schedule"]
    assert settings.REPLY_MAX_REQUEUES >= 1


def test_sync_tasks_are_acknowledged_late_and_requeued_if_their_worker_dies():
    from inbox.celery import app

    for name in ("inbox.tasks.sync_account", "inbox.tasks.fill_peer_nicknames"):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost
        assert app.amqp.router.route({}, name)["queue"].name == "sync"
    assert not app.tasks["inbox.tasks.send_reply"].acks_late
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
