"""Fault injection against the upstream: the real client and the real sync, over real HTTP, with
the sandbox hanging, redirecting, answering garbage, asking to wait an hour, and losing its
device. After every fault, the letters stored are exactly the upstream's: none lost, none twice.
(Reply faults, broker down and worker killed mid-send, are in tests/test_replies.py and
tests/test_worker.py.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db.models import Count
from django.utils import timezone

from accounts.client import UpstreamRedirected
from accounts.models import Account
from accounts.sandbox import EXAMPLE_KEY_BUFF, PEERS
from inbox import sync, tasks
from inbox.models import Message, QuarantinedItem
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

SYNC = "/finder/syncPrivateLetterMsg"


def upstream_ids(sandbox) -> list[int]:
    with sandbox.lock:
        return [
            item["content"]["msg"]["NewMsgId"] for item in sandbox.accounts[SANDBOX_APP_ID].letters
        ]


def assert_exactly_once(account: Account, sandbox) -> None:
    """Every letter the upstream has is stored, once; nothing else is."""
    stored = list(
        Message.objects.filter(account=account, new_msg_id__isnull=False)
        .values("new_msg_id")
        .annotate(n=Count("pk"))
        .values_list("new_msg_id", "n")
    )
    assert all(n == 1 for _, n in stored), "a letter was stored twice"
    assert sorted(int(new_msg_id) for new_msg_id, _ in stored) == sorted(upstream_ids(sandbox))


def state(account: Account) -> Account:
    account.refresh_from_db()
    return account


# --- hanging ---------------------------------------------------------------------------------


def test_a_hanging_upstream_fails_the_pass_inside_its_lease_and_loses_nothing(
    account, sandbox, settings
):
    settings.SYNC_PASS_SECONDS = 2
    sync.sync_account(account, max_pages=1)  # the example page is in
    before = Message.objects.count()
    sandbox.inject("slow", seconds=30, times=10)
    started = time.monotonic()

    with pytest.raises(sync.SyncFailed, match="UpstreamUnavailable"):
        sync.sync_account(account)

    assert time.monotonic() - started < settings.SYNC_PASS_SECONDS + 1
    account = state(account)
    assert account.key_buff == EXAMPLE_KEY_BUFF  # the cursor stayed
    assert account.sync_lease_token == ""  # and the lease was let go
    assert Message.objects.count() == before
    assert (account.paused_reason, account.outage_since) == ("", None)

    sandbox.faults.clear()
    while not sync.sync_account(account).caught_up:
        pass
    assert_exactly_once(account, sandbox)


def test_a_slow_upstream_makes_the_pass_stop_paging_before_its_lease_runs_out(
    account, sandbox, settings
):
    settings.SYNC_PASS_SECONDS = 3
    settings.SYNC_LEASE_SECONDS = 4
    sandbox.inject("slow", seconds=1.2, times=100)
    started = time.monotonic()

    result = sync.sync_account(account)

    assert time.monotonic() - started < settings.SYNC_LEASE_SECONDS
    assert not result.caught_up and result.pages >= 1
    assert state(account).failure_streak == 0  # stopping early is no failure: the task requeues

    sandbox.faults.clear()
    while not sync.sync_account(account).caught_up:
        pass
    assert_exactly_once(account, sandbox)


def test_a_retry_after_of_an_hour_holds_a_pass_for_seconds_not_an_hour(account, sandbox, settings):
    settings.VIDEOSAPI_MAX_RETRY_AFTER_SECONDS = 0.3
    sandbox.inject("retry_after", seconds=3600, times=2)
    started = time.monotonic()

    result = sync.sync_account(account)

    assert time.monotonic() - started < 5
    assert result.caught_up
    assert_exactly_once(account, sandbox)


# --- redirecting -----------------------------------------------------------------------------


@pytest.fixture
def token_catcher():
    """Whoever a redirect points at: records what it is sent."""
    received: list = []

    class Catch(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirecting_upstream_gets_no_token_moves_no_cursor_and_is_named(
    account, sandbox, token_catcher, status
):
    sandbox.inject("redirect", status=status, location=f"{token_catcher.url}/grab?k=v")

    with pytest.raises(sync.SyncFailed) as failed:
        sync.sync_account(account)

    assert token_catcher.received == []
    assert isinstance(failed.value.__cause__, UpstreamRedirected)
    account = state(account)
    assert f"redirected to {token_catcher.url}/grab " in account.last_error
    assert SANDBOX_TOKEN not in account.last_error and "k=v" not in account.last_error
    assert account.key_buff == "" and Message.objects.count() == 0

    sync.sync_account(account)
    assert_exactly_once(account, sandbox)


# --- garbage ---------------------------------------------------------------------------------

GARBAGE = [
    pytest.param("invalid_json", None, id="not-json"),
    pytest.param("answer", None, id="data-null"),
    pytest.param("answer", [], id="data-a-list"),
    pytest.param("answer", {"list": "letters", "keyBuff": "x"}, id="list-a-string"),
    pytest.param("answer", {"list": [], "keyBuff": 12345}, id="keybuff-a-number"),
    pytest.param("answer", {"list": [{"content": {}}]}, id="items-without-keybuff"),
]


@pytest.mark.parametrize("kind, data", GARBAGE)
def test_garbage_for_a_page_loses_nothing_and_leaves_the_cursor(account, sandbox, kind, data):
    sync.sync_account(account, max_pages=1)
    stored = Message.objects.count()
    sandbox.inject(kind, data=data) if kind == "answer" else sandbox.inject(kind)

    with pytest.raises(sync.SyncFailed):
        sync.sync_account(account)

    account = state(account)
    assert account.key_buff == EXAMPLE_KEY_BUFF
    assert Message.objects.count() == stored
    assert account.failure_streak == 1 and account.paused_reason == ""

    sync.sync_account(account)
    assert_exactly_once(account, sandbox)


def test_garbage_items_inside_a_good_page_are_quarantined_and_the_rest_stored(
    account, sandbox, make_item
):
    sync.sync_account(account)
    letter = sandbox.add_letter(SANDBOX_APP_ID, "还在吗？")
    with sandbox.lock:
        log = sandbox.accounts[SANDBOX_APP_ID].letters
        log.insert(len(log) - 1, {"content": {"msg": {"NewMsgId": "not-a-number"}}})
        log.insert(len(log) - 1, ["not", "an", "object"])

    sync.sync_account(account)

    assert QuarantinedItem.objects.filter(account=account).count() == 2
    assert Message.objects.filter(
        new_msg_id=letter["content"]["msg"]["NewMsgId"], content="还在吗？"
    ).exists()


# --- the device offline, then back ------------------------------------------------------------


def beat_until_idle() -> None:
    """One beat tick; tasks run inline (eager Celery), as a worker would run them."""
    tasks.sync_due_accounts()


def time_passes_until_due(account: Account) -> float:
    """Move the account's next sync to now, as if the clock reached it; return the wait."""
    wait = (state(account).next_sync_at - timezone.now()).total_seconds()
    Account.objects.filter(pk=account.pk).update(next_sync_at=timezone.now() - timedelta(seconds=1))
    return wait


def test_a_device_offline_then_online_recovers_by_itself_with_every_letter_once(
    account, sandbox, settings
):
    beat_until_idle()
    assert_exactly_once(account, sandbox)

    sandbox.set_device(SANDBOX_APP_ID, "offline")
    time_passes_until_due(account)
    beat_until_idle()
    account = state(account)
    down_since = account.outage_since
    assert down_since is not None and account.enabled and account.paused_reason == ""
    # Viewers keep writing while the phone is offline.
    sandbox.add_letter(SANDBOX_APP_ID, "有人吗？", peer=PEERS[3])
    sandbox.add_letter(SANDBOX_APP_ID, "我再等等", peer=PEERS[3])

    # Not probed again at every tick, but on the slow schedule.
    calls = len(sandbox.calls_to(SYNC))
    beat_until_idle()
    assert len(sandbox.calls_to(SYNC)) == calls
    assert 48 <= time_passes_until_due(account) <= 60
    beat_until_idle()
    assert len(sandbox.calls_to(SYNC)) == calls + 1
    assert state(account).outage_since == down_since

    sandbox.set_device(SANDBOX_APP_ID, "online")
    assert 96 <= time_passes_until_due(account) <= 120
    beat_until_idle()

    account = state(account)
    assert (account.outage_since, account.outage_reason, account.paused_reason) == (None, "", "")
    assert Message.objects.filter(content__in=["有人吗？", "我再等等"]).count() == 2
    assert_exactly_once(account, sandbox)
